package login

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sessions keeps login sessions in Redis. The poll script writes the session and the
// token it mints in one step, so login state needs one Redis primary (not Cluster).
type Sessions struct {
	rdb *redis.Client
	cfg Config
}

// NewSessions returns the store with cfg (zero fields take DefaultConfig).
func NewSessions(rdb *redis.Client, cfg Config) *Sessions {
	return &Sessions{rdb: rdb, cfg: cfg.withDefaults()}
}

// Config returns the effective timing rules.
func (s *Sessions) Config() Config { return s.cfg }

func sessionKey(id string) string  { return "login:{" + id + "}" }
func throttleKey(id string) string { return "login:{" + id + "}:poll" }
func tokenKey(token string) string { return "login:token:" + token }

// Create starts a session in state waiting.
func (s *Sessions) Create(ctx context.Context, now time.Time) (Session, error) {
	id := randomID()
	exp := now.Add(s.cfg.Validity)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, sessionKey(id), "state", string(Waiting), "exp", exp.UnixMilli(), "interval", s.cfg.Interval.Milliseconds())
		p.PExpire(ctx, sessionKey(id), s.cfg.Validity+s.cfg.Grace)
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return Session{ID: id, ExpiresAt: exp, Interval: s.cfg.Interval}, nil
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

// pollScript is the whole poll in one round trip:
//
//	KEYS: session, throttle, token-to-mint
//	ARGV: now ms, slow-down step ms, token ttl ms, token
//
// A poll inside the interval gets slow_down and the interval grows by the step for this
// and later polls (RFC 8628 §3.5). A confirmed session is consumed by the first poll
// after confirmation, which mints the token; no later poll can mint another.
var pollScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'state', 'exp', 'interval', 'person', 'unregistered', 'name', 'idNumber')
if not h[1] then return {'unknown', '0'} end
local state, interval = h[1], tonumber(h[3])
if state ~= 'consumed' and state ~= 'cancelled' and tonumber(ARGV[1]) >= tonumber(h[2]) then
  return {'expired', tostring(interval)}
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', interval) then
  interval = interval + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'interval', interval)
  redis.call('SET', KEYS[2], '1', 'PX', interval)
  return {'slow_down', tostring(interval), state}
end
if state == 'confirmed' then
  redis.call('HSET', KEYS[1], 'state', 'consumed')
  if h[5] == '1' then return {'registration_required', tostring(interval)} end
  redis.call('SET', KEYS[3], h[4], 'PX', tonumber(ARGV[3]))
  return {'confirmed', tostring(interval), h[4], h[6] or '', h[7] or ''}
end
return {state, tostring(interval)}
`)

// Poll answers one poll of session id.
func (s *Sessions) Poll(ctx context.Context, id string, now time.Time) (PollResult, error) {
	if !ValidID(id) {
		return PollResult{}, ErrUnknown
	}
	token := randomID()
	res, err := pollScript.Run(ctx, s.rdb, []string{sessionKey(id), throttleKey(id), tokenKey(token)},
		now.UnixMilli(), s.cfg.SlowDownStep.Milliseconds(), s.cfg.TokenTTL.Milliseconds(), token).StringSlice()
	if err != nil {
		return PollResult{}, err
	}
	ms, _ := strconv.ParseInt(res[1], 10, 64)
	r := PollResult{Interval: time.Duration(ms) * time.Millisecond}
	switch res[0] {
	case "unknown":
		return PollResult{}, ErrUnknown
	case "slow_down":
		r.SlowDown, r.State = true, State(res[2])
	case "registration_required":
		r.State, r.RegistrationRequired = Consumed, true
	case "confirmed":
		r.State, r.Token, r.PersonID = Confirmed, token, res[2]
		r.MaskedName, r.MaskedIDNumber = res[3], res[4]
	default:
		r.State = State(res[0])
	}
	return r, nil
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
