package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/redisbatch"
)

// Sessions keeps login sessions in Redis. The poll script writes the session and the
// token it mints in one step, so login state needs one Redis primary (not Cluster).
type Sessions struct {
	rdb   redis.UniversalClient
	cfg   Config
	polls *redisbatch.Batcher // the poll script, pipelined across concurrent polls
}

// pollSlots is how many pipelines of polls are in flight at once, each on one pooled
// Redis connection; thousands of polling pages share them (make bench).
const pollSlots = 8

// NewSessions returns the store with cfg (zero fields take DefaultConfig).
func NewSessions(rdb redis.UniversalClient, cfg Config) *Sessions {
	return &Sessions{rdb: rdb, cfg: cfg.withDefaults(), polls: redisbatch.New(rdb, pollScript, pollSlots)}
}

// Config returns the effective timing rules.
func (s *Sessions) Config() Config { return s.cfg }

func sessionKey(id string) string  { return "login:{" + id + "}" }
func tokenKey(token string) string { return "login:token:" + token }

// Create starts a session in state waiting.
func (s *Sessions) Create(ctx context.Context, now time.Time) (Session, error) {
	id, secret := randomID(), randomID()
	exp := now.Add(s.cfg.Validity)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, sessionKey(id), "state", string(Waiting), "exp", exp.UnixMilli(), "interval", s.cfg.Interval.Milliseconds(),
			"secret", secretDigest(secret))
		p.PExpire(ctx, sessionKey(id), s.cfg.Validity+s.cfg.Grace)
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return Session{ID: id, ExpiresAt: exp, Interval: s.cfg.Interval, PollSecret: secret}, nil
}

// secretDigest is what Redis keeps of a poll secret (256 random bits: a plain hash is
// enough), so a copy of Redis cannot poll either.
func secretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// transitionScript moves a session to ARGV[2] when its state is one of ARGV[3] (comma
// separated) and it has not expired; ARGV[4..] are field/value pairs to set with it.
var transitionScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'exp')
if not h[1] then return {'unknown', ''} end
if h[1] ~= 'consumed' and h[1] ~= 'cancelled' and tonumber(ARGV[1]) >= tonumber(h[2]) then return {'expired', h[1]} end
for allowed in string.gmatch(ARGV[3], '[^,]+') do
  if h[1] == allowed then
    redis.call('HSET', KEYS[1], 'state', ARGV[2])
    for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
    return {'ok', h[1]}
  end
end
return {'illegal', h[1]}
`)

// allowedFrom lists the states each target state may be reached from.
var allowedFrom = map[State][]State{
	Scanned:   {Waiting},
	Confirmed: {Waiting, Scanned}, // an app may confirm without a separate scan notice
	Cancelled: {Waiting, Scanned, Confirmed},
}

// Transition applies an e-card platform notice to session id. Extra fields are stored
// with it (e.g. the holder). It returns the state before the change.
func (s *Sessions) Transition(ctx context.Context, id string, to State, now time.Time, fields ...string) (State, error) {
	if !ValidID(id) {
		return "", ErrUnknown
	}
	from, ok := allowedFrom[to]
	if !ok {
		return "", fmt.Errorf("%w: no transition into %s", ErrIllegal, to)
	}
	names := make([]string, len(from))
	for i, f := range from {
		names[i] = string(f)
	}
	args := append([]any{now.UnixMilli(), string(to), strings.Join(names, ",")}, toAny(fields)...)
	res, err := transitionScript.Run(ctx, s.rdb, []string{sessionKey(id)}, args...).StringSlice()
	if err != nil {
		return "", err
	}
	prev := State(res[1])
	switch res[0] {
	case "ok":
		return prev, nil
	case "unknown":
		return "", ErrUnknown
	case "expired":
		return Expired, fmt.Errorf("%w: the session expired", ErrIllegal)
	default:
		return prev, fmt.Errorf("%w: %s → %s", ErrIllegal, prev, to)
	}
}

// Confirm records the holder's confirmation. personID is empty when the holder has no
// record here: the poll then answers "registration required" instead of a token.
func (s *Sessions) Confirm(ctx context.Context, id, personID string, now time.Time) error {
	unregistered := "0"
	if personID == "" {
		unregistered = "1"
	}
	_, err := s.Transition(ctx, id, Confirmed, now, "person", personID, "unregistered", unregistered)
	return err
}

// Cancel ends a session that is still open (the page asked for a new QR, or the holder
// declined in the app).
func (s *Sessions) Cancel(ctx context.Context, id string, now time.Time) error {
	_, err := s.Transition(ctx, id, Cancelled, now)
	return err
}

// Refresh cancels the old session (if it is still open) and creates a new one.
func (s *Sessions) Refresh(ctx context.Context, oldID string, now time.Time) (Session, error) {
	if err := s.Cancel(ctx, oldID, now); err != nil && !errors.Is(err, ErrIllegal) && !errors.Is(err, ErrUnknown) {
		return Session{}, err
	}
	return s.Create(ctx, now)
}

// consumeScript hands out the token of a confirmed session, once: it moves the session
// to consumed and stores the token in the same step, so two polls racing after the
// confirmation cannot both get one.
//
//	KEYS: session
//
// The token is stored by the caller right after: a script may only touch keys of one
// Redis Cluster slot, and the token key cannot share the session's (it is looked up by
// the token alone). If that write fails the session stays consumed and the resident
// scans again; no second token can come from it.
var consumeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'person', 'unregistered', 'name', 'idNumber')
if h[1] ~= 'confirmed' then return {h[1] or 'unknown'} end
redis.call('HSET', KEYS[1], 'state', 'consumed')
if h[3] == '1' then return {'registration_required'} end
return {'confirmed', h[2], h[4] or '', h[5] or ''}
`)

// pollScript marks a poll and reads the session in one round trip. The time of the last
// accepted poll is a field of the session (Redis server time), so a poll creates no key
// and no expiry — the cheapest shape measured (make bench). A poll earlier than the
// interval after the last accepted one grows the interval (RFC 8628 slow_down) and
// restarts the wait. A poll without the page's secret is answered as an unknown session
// and changes nothing (it cannot slow the page down); checking it here costs no round
// trip.
//
//	KEYS: session    ARGV: slow-down step ms, poll secret digest
var pollScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'exp', 'interval', 'last', 'secret')
if not h[1] or h[5] ~= ARGV[2] then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(h[3])
if h[4] and now - tonumber(h[4]) < interval then
  interval = redis.call('HINCRBY', KEYS[1], 'interval', tonumber(ARGV[1]))
  redis.call('HSET', KEYS[1], 'last', now)
  return {0, h[1], h[2], interval}
end
redis.call('HSET', KEYS[1], 'last', now)
return {1, h[1], h[2], interval}
`)

// Poll answers one poll of session id by the page holding its poll secret: one script
// call in the common case; the one poll after confirmation takes a second step to hand
// out the token. A wrong or missing secret is ErrUnknown, like a session that does not
// exist.
func (s *Sessions) Poll(ctx context.Context, id, secret string, now time.Time) (PollResult, error) {
	if !ValidID(id) || !ValidID(secret) {
		return PollResult{}, ErrUnknown
	}
	polled, err := s.polls.Run(ctx, []string{sessionKey(id)}, s.cfg.SlowDownStep.Milliseconds(), secretDigest(secret))
	if err != nil {
		return PollResult{}, err
	}
	f, _ := polled.([]any)
	if len(f) < 4 {
		return PollResult{}, ErrUnknown
	}
	state, _ := f[1].(string)
	exp := atoi(f[2])
	interval, _ := f[3].(int64)
	r := PollResult{State: State(state), Interval: time.Duration(interval) * time.Millisecond}
	if !r.State.Terminal() && now.UnixMilli() >= exp {
		r.State = Expired
		return r, nil
	}
	if accepted, _ := f[0].(int64); accepted == 0 {
		r.SlowDown = true
		return r, nil
	}
	if r.State != Confirmed {
		return r, nil
	}
	token := randomID()
	res, err := consumeScript.Run(ctx, s.rdb, []string{sessionKey(id)}).StringSlice()
	if err != nil {
		return PollResult{}, err
	}
	switch res[0] {
	case "confirmed":
		if err := s.rdb.Set(ctx, tokenKey(token), res[1], s.cfg.TokenTTL).Err(); err != nil {
			return PollResult{}, err
		}
		r.Token, r.PersonID, r.MaskedName, r.MaskedIDNumber = token, res[1], res[2], res[3]
	case "registration_required":
		r.State, r.RegistrationRequired = Consumed, true
	default: // another poll consumed it a moment ago
		r.State = State(res[0])
	}
	return r, nil
}

func atoi(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Holder returns the person a session token belongs to.
func (s *Sessions) Holder(ctx context.Context, token string) (string, error) {
	if !ValidID(token) {
		return "", ErrUnknown
	}
	v, err := s.rdb.Get(ctx, tokenKey(token)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrUnknown
	}
	return v, err
}

// Revoke ends a session token (logout).
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	if !ValidID(token) {
		return nil
	}
	return s.rdb.Del(ctx, tokenKey(token)).Err()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
