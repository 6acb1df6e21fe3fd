package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
)

// CodeSender delivers an SMS verification code. sms-alert owns real delivery over the
// carriers' gateways; LocalCodes records codes so development and tests can read them.
type CodeSender interface {
	SendCode(ctx context.Context, phone, purpose, code string) error
}

// Errors of the phone change (004 §3(2)).
var (
	ErrTooSoon      = errors.New("a code was sent moments ago")
	ErrCodeInvalid  = errors.New("the verification code is wrong or has expired")
	ErrIdentity     = errors.New("the ID number or the old phone number does not match")
	ErrNotLoggedIn  = errors.New("not logged in")
	ErrPhoneInvalid = errors.New("not a mainland mobile number")
)

// PhoneChange lets a holder logged in by scan change the phone number on record: ID
// number + old phone + new phone + an SMS code sent to the new phone.
type PhoneChange struct {
	Sessions *Sessions
	People   *person.Store
	Pool     *pgxpool.Pool
	Codes    CodeSender
	Audit    *audit.Log
	// CodeTTL is how long a code is valid [5m]; Resend the least time between codes [60s];
	// MaxAttempts wrong tries (a wrong code, ID number or old phone) before the code is
	// void [5].
	CodeTTL, Resend time.Duration
	MaxAttempts     int64
}

func (p *PhoneChange) defaults() {
	if p.CodeTTL <= 0 {
		p.CodeTTL = 5 * time.Minute
	}
	if p.Resend <= 0 {
		p.Resend = time.Minute
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
}

func codeKey(personID string) string   { return "phone-code:{" + personID + "}" }
func resendKey(personID string) string { return "phone-code:{" + personID + "}:resend" }

// digest binds a code to the person and the new phone without keeping either in Redis.
func digest(personID, phone, code string) string {
	m := hmac.New(sha256.New, []byte("phone-change/v1/"+personID))
	m.Write([]byte(phone + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// holderAndPhone resolves the session token and normalises the new phone number.
func (p *PhoneChange) holderAndPhone(ctx context.Context, token, newPhone string) (personID, phone string, err error) {
	p.defaults()
	personID, err = p.Sessions.Holder(ctx, token)
	if errors.Is(err, ErrUnknown) {
		return "", "", ErrNotLoggedIn
	}
	if err != nil {
		return "", "", err
	}
	if phone, err = pii.NormalisePhone(newPhone); err != nil {
		return "", "", ErrPhoneInvalid
	}
	return personID, phone, nil
}

// SendCode sends a code to the new phone of the holder of token.
func (p *PhoneChange) SendCode(ctx context.Context, token, newPhone string) error {
	personID, phone, err := p.holderAndPhone(ctx, token, newPhone)
	if err != nil {
		return err
	}
	ok, err := p.Sessions.rdb.SetNX(ctx, resendKey(personID), 1, p.Resend).Result()
	if err != nil {
		return err
	}
	if !ok {
		return ErrTooSoon
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	_, err = p.Sessions.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HSet(ctx, codeKey(personID), "digest", digest(personID, phone, code), "attempts", 0)
		pl.Expire(ctx, codeKey(personID), p.CodeTTL)
		return nil
	})
	if err != nil {
		return err
	}
	return p.Codes.SendCode(ctx, phone, "phone-change", code)
}

// Change replaces the phone number after checking identity, the old phone and the code.
// The code is single use and void after MaxAttempts wrong tries.
func (p *PhoneChange) Change(ctx context.Context, token, idNumber, oldPhone, newPhone, code, requestID string) error {
	personID, phone, err := p.holderAndPhone(ctx, token, newPhone)
	if err != nil {
		return err
	}
	stored, err := p.Sessions.rdb.HGet(ctx, codeKey(personID), "digest").Result()
	if errors.Is(err, redis.Nil) {
		return ErrCodeInvalid
	}
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(stored), []byte(digest(personID, phone, code))) {
		return p.failedAttempt(ctx, personID, ErrCodeInvalid)
	}
	who, err := p.People.Get(ctx, personID)
	if err != nil {
		return err
	}
	wantID, err1 := pii.NormaliseIDNumber(idNumber)
	wantOld, err2 := pii.NormalisePhone(oldPhone)
	haveOld, _ := pii.NormalisePhone(who.Phone)
	if err1 != nil || err2 != nil || wantID != who.IDNumber || wantOld != haveOld {
		// A wrong ID number or old phone is a failed try of the code too: otherwise one
		// code (sent to a phone the caller chose) would let the old number be guessed
		// without end.
		return p.failedAttempt(ctx, personID, ErrIdentity)
	}
	// Single use: whoever deletes the code first may change the number.
	if n, err := p.Sessions.rdb.Del(ctx, codeKey(personID)).Result(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return ErrCodeInvalid
	}
	return pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		if err := p.People.SetPhone(ctx, tx, personID, phone); err != nil {
			return err
		}
		_, err := p.Audit.AppendTx(ctx, tx, audit.Entry{Actor: personID, Channel: "h5", Action: "person.phone.change",
			ObjectType: "person", ObjectID: personID, RequestID: requestID})
		return err
	})
}

// failedAttempt counts a wrong try against the person's code and voids the code at
// MaxAttempts; it returns why the try failed. One script, so concurrent tries neither
// lose a count nor bring back a voided code (a count on a missing key does nothing).
func (p *PhoneChange) failedAttempt(ctx context.Context, personID string, why error) error {
	if err := failScript.Run(ctx, p.Sessions.rdb, []string{codeKey(personID)}, p.MaxAttempts).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return why
}

var failScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return n`)

// LocalCodes records codes in Redis under a digest of the phone number, for development
// and tests; nothing is sent.
type LocalCodes struct{ RDB redis.UniversalClient }

// LocalCodeKey is where LocalCodes keeps the last code for phone.
func LocalCodeKey(phone string) string {
	sum := sha256.Sum256([]byte(phone))
	return "sms-local:code:" + hex.EncodeToString(sum[:])
}

// SendCode implements CodeSender.
func (l LocalCodes) SendCode(ctx context.Context, phone, _, code string) error {
	return l.RDB.Set(ctx, LocalCodeKey(phone), code, 10*time.Minute).Err()
}
