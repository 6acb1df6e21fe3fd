package sms

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
)

// CodeLimits are the abuse limits of verification codes, per phone number and per
// client (the calling app, or the H5 session/IP it names).
type CodeLimits struct {
	Interval    time.Duration // one code per phone and per client per Interval (60 s)
	PerDay      int           // codes per phone and per client per China day (10)
	TTL         time.Duration // a code's validity (5 min)
	MaxAttempts int           // wrong tries before the code is void (5)
	Digits      int           // 6
}

// DefaultCodeLimits are the limits when none are configured.
var DefaultCodeLimits = CodeLimits{Interval: 60 * time.Second, PerDay: 10, TTL: 5 * time.Minute, MaxAttempts: 5, Digits: 6}

// Codes issues and checks SMS verification codes. Codes live only in Redis, hashed
// (SM3 over a per-code salt), with a TTL and an attempt counter; the number appears in
// keys only as its blind index.
type Codes struct {
	Redis   redis.UniversalClient
	Service *Service
	Limits  CodeLimits
	Now     func() time.Time
}

// CodeRequest asks for a code to Phone for Purpose (e.g. change-phone, loss-report).
type CodeRequest struct {
	Phone   string `json:"phone"`
	Purpose string `json:"purpose"`
	Client  string `json:"client"`
}

// Issued is the answer to a code request.
type Issued struct {
	MessageID string    `json:"messageId"`
	Phone     string    `json:"phone"` // masked
	ExpiresAt time.Time `json:"expiresAt"`
}

var purposeRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (c *Codes) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Codes) check(phone, purpose, client string, needClient bool) (string, []byte, error) {
	var bad []problem.InvalidParam
	p, ok := NormalisePhone(phone)
	if !ok {
		bad = append(bad, problem.Field("phone", "must be an 11-digit mainland mobile number"))
	}
	if !purposeRE.MatchString(purpose) {
		bad = append(bad, problem.Field("purpose", "required: lower-case letters, digits and -, at most 32"))
	}
	if needClient && (client == "" || len(client) > 128) {
		bad = append(bad, problem.Field("client", "required: the client (app, session or address) asking, at most 128 characters"))
	}
	if len(bad) > 0 {
		return "", nil, problem.Invalid("the code request has invalid fields", bad...)
	}
	idx, err := c.Service.Protect.BlindIndex(pii.KindPhone, p)
	return p, idx, err
}

// Issue checks the limits, stores a new code and queues its SMS in one transaction.
func (c *Codes) Issue(ctx context.Context, req CodeRequest) (Issued, error) {
	phone, idx, err := c.check(req.Phone, req.Purpose, req.Client, true)
	if err != nil {
		return Issued{}, err
	}
	l := c.Limits
	now := c.now()
	ph := hex.EncodeToString(idx)
	clientKey := hex.EncodeToString(sm3Sum([]byte(req.Client)))
	if err := c.limit(ctx, "phone:"+ph, now); err != nil {
		return Issued{}, err
	}
	if err := c.limit(ctx, "client:"+clientKey, now); err != nil {
		return Issued{}, err
	}
	code, err := randomDigits(l.Digits)
	if err != nil {
		return Issued{}, err
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := "sms:code:" + req.Purpose + ":" + ph
	if err := c.Redis.HSet(ctx, key, "salt", hex.EncodeToString(salt), "hash", hex.EncodeToString(codeHash(salt, code)),
		"attempts", 0).Err(); err != nil {
		return Issued{}, problem.Unavailable("redis", 5*time.Second, err)
	}
	c.Redis.Expire(ctx, key, l.TTL)
	msgID := "code:" + newID()
	var recs []Record
	err = pgx.BeginFunc(ctx, c.Service.Pool, func(tx pgx.Tx) error {
		recs, err = c.Service.Enqueue(ctx, tx, Request{MessageID: msgID, Template: "verification_code",
			Params: map[string]string{"code": code, "minutes": strconv.Itoa(int(l.TTL.Minutes()))}, Phone: phone,
			Purpose: events.PurposeCode})
		return err
	})
	if err != nil {
		c.Redis.Del(ctx, key)
		return Issued{}, err
	}
	return Issued{MessageID: msgID, Phone: recs[0].Phone, ExpiresAt: now.Add(l.TTL)}, nil
}

// limit enforces one per Interval and PerDay per China day for subject.
func (c *Codes) limit(ctx context.Context, subject string, now time.Time) error {
	l := c.Limits
	ok, err := c.Redis.SetNX(ctx, "sms:rl:gap:"+subject, 1, l.Interval).Result()
	if err != nil {
		return problem.Unavailable("redis", 5*time.Second, err)
	}
	if !ok {
		ttl, _ := c.Redis.TTL(ctx, "sms:rl:gap:"+subject).Result()
		return problem.TooMany(fmt.Sprintf("one code per %s: wait before asking again", l.Interval), max(ttl, time.Second))
	}
	day := now.In(ChinaTime)
	dayKey := "sms:rl:day:" + day.Format("20060102") + ":" + subject
	n, err := c.Redis.Incr(ctx, dayKey).Result()
	if err != nil {
		return problem.Unavailable("redis", 5*time.Second, err)
	}
	if n == 1 {
		c.Redis.Expire(ctx, dayKey, 25*time.Hour)
	}
	if int(n) > l.PerDay {
		midnight := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, ChinaTime)
		return problem.TooMany(fmt.Sprintf("at most %d codes a day", l.PerDay), midnight.Sub(now))
	}
	return nil
}

// ErrCodeWrong and friends are the outcomes of a failed check.
var (
	ErrCodeWrong   = errors.New("the code is wrong")
	ErrCodeExpired = errors.New("no valid code: expired, used or never issued")
	ErrCodeLocked  = errors.New("too many wrong codes: ask for a new one")
)

// Verify checks a code; a right code is used up, and MaxAttempts wrong ones void it.
func (c *Codes) Verify(ctx context.Context, phone, purpose, code string) error {
	_, idx, err := c.check(phone, purpose, "", false)
	if err != nil {
		return err
	}
	if len(code) == 0 || len(code) > 12 {
		return problem.Invalid("the code is missing", problem.Field("code", "required"))
	}
	key := "sms:code:" + purpose + ":" + hex.EncodeToString(idx)
	n, err := c.Redis.HIncrBy(ctx, key, "attempts", 1).Result()
	if err != nil {
		return problem.Unavailable("redis", 5*time.Second, err)
	}
	v, err := c.Redis.HMGet(ctx, key, "salt", "hash").Result()
	if err != nil {
		return problem.Unavailable("redis", 5*time.Second, err)
	}
	salt, _ := v[0].(string)
	want, _ := v[1].(string)
	if salt == "" || want == "" {
		c.Redis.Del(ctx, key) // HIncrBy created it
		return ErrCodeExpired
	}
	if int(n) > c.Limits.MaxAttempts {
		c.Redis.Del(ctx, key)
		return ErrCodeLocked
	}
	s, _ := hex.DecodeString(salt)
	w, _ := hex.DecodeString(want)
	if subtle.ConstantTimeCompare(codeHash(s, code), w) != 1 {
		if int(n) >= c.Limits.MaxAttempts {
			c.Redis.Del(ctx, key)
			return ErrCodeLocked
		}
		return ErrCodeWrong
	}
	c.Redis.Del(ctx, key)
	return nil
}

func codeHash(salt []byte, code string) []byte {
	return sm3Sum(append(append([]byte{}, salt...), code...))
}

func sm3Sum(b []byte) []byte {
	h := sm3.Sum(b)
	return h[:]
}

func randomDigits(n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%0*d", n, v), nil
}
