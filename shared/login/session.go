// Package login is the e-card scan-login state machine (004 §3(1)–(5)): a login session
// behind a QR code, its states, polling with RFC 8628-style slow_down, and the one-time
// exchange of a confirmed session for a session token. State lives in Redis with TTLs;
// every poll is one script call, O(1).
package login

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// State of a login session.
type State string

const (
	Waiting   State = "waiting"   // QR shown, not scanned
	Scanned   State = "scanned"   // scanned in the e-card app, awaiting the holder's confirmation
	Confirmed State = "confirmed" // confirmed; the next poll receives the session token
	Consumed  State = "consumed"  // the token was handed out; the session is spent
	Cancelled State = "cancelled" // the holder declined, or the page asked for a new QR
	Expired   State = "expired"   // the QR's validity ran out (derived from the expiry time)
)

// Terminal reports whether no further transition is possible.
func (s State) Terminal() bool {
	return s == Consumed || s == Cancelled || s == Expired
}

// Errors the functions map to answers.
var (
	ErrUnknown    = errors.New("unknown login session")
	ErrIllegal    = errors.New("illegal login state transition")
	ErrUnregister = errors.New("e-card holder is not registered")
)

// Config are the timing rules.
type Config struct {
	Validity     time.Duration // how long a QR is valid [120s]
	Interval     time.Duration // the poll interval the page is told to use [2s]
	SlowDownStep time.Duration // added to the interval on each too-fast poll (RFC 8628: 5s)
	TokenTTL     time.Duration // session token lifetime [30m]
	// Grace keeps an expired session readable, so a late poll learns "expired" rather
	// than "unknown" [10m].
	Grace time.Duration
}

// DefaultConfig is used for zero fields.
var DefaultConfig = Config{Validity: 120 * time.Second, Interval: 2 * time.Second, SlowDownStep: 5 * time.Second,
	TokenTTL: 30 * time.Minute, Grace: 10 * time.Minute}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Validity > 0 {
		d.Validity = c.Validity
	}
	if c.Interval > 0 {
		d.Interval = c.Interval
	}
	if c.SlowDownStep > 0 {
		d.SlowDownStep = c.SlowDownStep
	}
	if c.TokenTTL > 0 {
		d.TokenTTL = c.TokenTTL
	}
	if c.Grace > 0 {
		d.Grace = c.Grace
	}
	return d
}

// Session is what the page receives when a QR is created.
type Session struct {
	ID        string        `json:"sessionId"`
	ExpiresAt time.Time     `json:"expiresAt"`
	Interval  time.Duration `json:"-"`
	// PollSecret is for the page alone: the QR carries only ID, so whoever sees the QR
	// (over a shoulder, on a shared screen) cannot poll for the session token. Redis
	// keeps only its digest.
	PollSecret string `json:"pollSecret"`
}

// PollSecretHeader carries the poll secret on every poll (never in the URL, so it stays
// out of access logs).
const PollSecretHeader = "X-Poll-Secret"

// PollResult is the answer to one poll.
type PollResult struct {
	State    State
	Interval time.Duration // the interval the page must keep from now on
	SlowDown bool          // the poll came too early; Interval has grown
	Token    string        // set once, on the poll that consumes a confirmed session
	PersonID string        // the registered holder, with Token
	// Masked holder name and ID number, with Token, for the page's greeting.
	MaskedName, MaskedIDNumber string
	// RegistrationRequired: confirmed by a holder who has no record here yet.
	RegistrationRequired bool
}

// randomID returns 32 random bytes, base64url: unguessable session ids and tokens.
func randomID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the platform cannot run safely without it
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether s has the shape of a session id (or token), so garbage never
// reaches Redis key names.
func ValidID(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
