package callsign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// DefaultWindow is how far a request timestamp may be from the server clock.
const DefaultWindow = 300 * time.Second

// Config configures a Verifier.
type Config struct {
	// Function is this function's name; it is part of what callers sign, so a request
	// signed for one function is refused by every other.
	Function string
	Registry Registry
	Nonces   NonceStore
	// SignKey signs responses; EncKeys open request envelopes (several during a rotation;
	// callers name theirs in X-GM-Envelope by gm.KeyID of its public key).
	SignKey crypto.Signer
	EncKeys []crypto.Decrypter
	// Window bounds the clock skew of a request (default DefaultWindow).
	Window time.Duration
	// RetryAfter is sent with 503 when Redis or the registry cannot be reached (default 5 s).
	RetryAfter time.Duration
	Log        *slog.Logger
	// MapError turns a handler error that is not a problem into one (platform.Deps.Outage).
	MapError func(error) *problem.Problem
	Now      func() time.Time
}

// Verifier checks signed calls and signs the answers.
type Verifier struct {
	cfg       Config
	signKeyID string
	enc       map[string]crypto.Decrypter
	log       *slog.Logger
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if !isFunction(cfg.Function) {
		return nil, errors.New("callsign: Function must be a function name")
	}
	if cfg.Registry == nil || cfg.Nonces == nil || cfg.SignKey == nil {
		return nil, errors.New("callsign: Registry, Nonces and SignKey are required")
	}
	pub, ok := cfg.SignKey.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("callsign: SignKey is not an SM2 key")
	}
	v := &Verifier{cfg: cfg, signKeyID: gm.KeyID(pub), enc: map[string]crypto.Decrypter{}, log: cfg.Log}
	for _, d := range cfg.EncKeys {
		p, ok := d.Public().(*ecdsa.PublicKey)
		if !ok {
			return nil, errors.New("callsign: an EncKey is not an SM2 key")
		}
		v.enc[gm.KeyID(p)] = d
	}
	if v.cfg.Window <= 0 {
		v.cfg.Window = DefaultWindow
	}
	if v.cfg.RetryAfter <= 0 {
		v.cfg.RetryAfter = 5 * time.Second
	}
	if v.cfg.Now == nil {
		v.cfg.Now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v, nil
}

// SignKeyID is the key ID callers see in X-GM-KeyId of responses.
func (v *Verifier) SignKeyID() string { return v.signKeyID }

// nonceTTL outlives every moment at which a request could still pass the window check.
func (v *Verifier) nonceTTL() time.Duration { return 2*v.cfg.Window + time.Minute }

// Unauthenticated is the one answer to every failed authentication check: it says
// nothing about which one failed.
func Unauthenticated() *problem.Problem {
	return problem.New(http.StatusUnauthorized, "unauthenticated", "Unauthenticated",
		"the request could not be authenticated")
}

// Identity is the authenticated caller of a request.
type Identity struct {
	AppID     string
	AppName   string
	Kind      string
	KeyID     string
	Nonce     string
	Enveloped bool
}

type verified struct {
	id        Identity
	fields    RequestFields
	entry     *Entry
	body      []byte
	innerType string
	session   []byte
}

func reqContext(req *handler.Request) context.Context {
	if ctx := req.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// verify runs the checks in order: shape, clock window, body hash, caller key, signature,
// nonce (only after the signature, so strangers cannot fill the store), envelope.
func (v *Verifier) verify(req *handler.Request) (*verified, error) {
	ctx := reqContext(req)
	h := req.Header
	f := RequestFields{Method: req.Method, Function: v.cfg.Function, Path: runtime.Path(*req), RawQuery: req.QueryString,
		AppID: h.Get(HeaderAppID), KeyID: h.Get(HeaderKeyID), Timestamp: h.Get(HeaderTimestamp),
		Nonce: h.Get(HeaderNonce), Envelope: h.Get(HeaderEnvelope), BodySM3: h.Get(HeaderBodySM3)}
	reject := func(reason string) error {
		attrs := []any{"request_id", runtime.RequestID(*req), "reason", reason}
		if isID(f.AppID) {
			attrs = append(attrs, "app_id", f.AppID)
		}
		v.log.Info("callsign: request rejected", attrs...)
		return Unauthenticated()
	}
	canon, err := CanonicalRequest(f)
	if err != nil {
		return nil, reject(err.Error())
	}
	ts, _ := parseTimestamp(f.Timestamp)
	now := v.cfg.Now()
	if skew := now.Sub(time.Unix(ts, 0)); skew > v.cfg.Window || skew < -v.cfg.Window {
		return nil, reject("timestamp outside the window")
	}
	if BodySM3(req.Body) != f.BodySM3 {
		return nil, reject("body does not match its SM3")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(h.Get(HeaderSignature))
	if err != nil || len(sig) == 0 || len(sig) > 128 {
		return nil, reject("malformed signature")
	}
	entry, err := v.cfg.Registry.Lookup(ctx, f.AppID, f.KeyID)
	if errors.Is(err, ErrUnknownCaller) {
		return nil, reject("unknown app or key")
	}
	if err != nil {
		v.log.Error("callsign: caller registry unavailable", "request_id", runtime.RequestID(*req), "error", err.Error())
		return nil, problem.Unavailable("postgres", v.cfg.RetryAfter, err)
	}
	if !entry.usable(now) {
		return nil, reject("key revoked, expired or not yet valid, or app suspended")
	}
	if !gm.Verify(entry.Key.Public, []byte(canon), sig) {
		return nil, reject("signature does not verify")
	}
	fresh, err := v.cfg.Nonces.Remember(ctx, "callsign:nonce:"+f.AppID+":"+f.Nonce, v.nonceTTL())
	if err != nil {
		v.log.Error("callsign: nonce store unavailable; failing closed", "request_id", runtime.RequestID(*req), "error", err.Error())
		return nil, problem.Unavailable("redis", v.cfg.RetryAfter, err)
	}
	if !fresh {
		return nil, reject("nonce replayed")
	}
	out := &verified{fields: f, entry: entry, body: req.Body, id: Identity{AppID: f.AppID, AppName: entry.App.Name,
		Kind: entry.App.Kind, KeyID: f.KeyID, Nonce: f.Nonce, Enveloped: f.Envelope != ""}}
	if f.Envelope == "" {
		return out, nil
	}
	d, ok := v.enc[f.Envelope]
	if !ok {
		return nil, reject("unknown envelope key")
	}
	env, err := parseEnvelope(req.Body, true)
	if err != nil {
		return nil, reject("malformed envelope")
	}
	aad, err := RequestAAD(f, env.typ)
	if err != nil {
		return nil, reject("malformed envelope")
	}
	key, err := env.unwrapKey(d)
	if err != nil {
		return nil, reject("envelope key does not decrypt")
	}
	pt, err := env.open(key, aad)
	if err != nil {
		return nil, reject("envelope does not decrypt")
	}
	out.body, out.innerType, out.session = pt, env.typ, key
	return out, nil
}

// Verify authenticates req without serving it and returns the caller (for handlers
// that do their own response signing, e.g. streaming). Most code uses Require.
func (v *Verifier) Verify(req handler.Request) (Identity, []byte, error) {
	vr, err := v.verify(&req)
	if err != nil {
		return Identity{}, nil, err
	}
	return vr.id, vr.body, nil
}
