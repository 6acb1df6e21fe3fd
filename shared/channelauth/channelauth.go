// Package channelauth is the one rule of who may speak for a channel, shared by every
// function that takes requests from counters: a request on the bank, outlet (社区网点/窗口)
// or kiosk channel must be a signed call (shared/callsign) from a registered caller of
// that kind, allowed on the route, and that caller's app id is the identity recorded —
// never a name the request carries. The online H5 and phone channels (and the employer
// batch) keep the authentication they had: they need no signature.
//
// A request that carries any X-GM-* header is treated as signed and verified in full, so
// a half-signed request is a uniform 401 rather than an unsigned one.
package channelauth

import (
	"net/http"
	"slices"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// Caller kinds (callsign App.Kind) that speak for a channel. A caller of another kind
// ("app", "service") may sign too, but only on channels that need no signature.
const (
	KindBank   = "bank"
	KindOutlet = "outlet"
	KindKiosk  = "kiosk"
	// KindStaff: the bureau's own staff systems (finance desks, report desks, operations).
	// They speak for no resident channel; what they may do is exactly their routes.
	KindStaff = "staff"
	// KindAdmin is a bureau administrator's console or service: operations over many
	// citizens at once (face-match's 1:N search) that no counter or kiosk may make, and the
	// kiosk registry and commands (its region lives with the kiosk capability, kiosk_admins).
	// It speaks for no channel.
	KindAdmin = "admin"
)

// signedChannels maps each channel that needs a signed caller to the caller kind that may
// use it. The names are the same in shared/card and the events catalog.
var signedChannels = map[string]string{"bank": KindBank, "outlet": KindOutlet, "kiosk": KindKiosk}

// RequiresSignature reports whether requests on channel must be signed calls.
func RequiresSignature(channel string) bool {
	_, ok := signedChannels[channel]
	return ok
}

// ChannelOf is the channel a caller of kind speaks for ("" for kinds without one).
func ChannelOf(kind string) string {
	for ch, k := range signedChannels {
		if k == kind {
			return ch
		}
	}
	return ""
}

// Claim is what a request says about itself, before anything is checked.
type Claim struct {
	Channel  string // as the request names it; "" when it names none
	KioskID  string // the kiosk the request says it comes from
	Operator string // the operator or app id the request names
}

// Actor is who the function records as having acted.
type Actor struct {
	// ID: the app id of a signed caller; otherwise the operator the request named ("" if none).
	ID string
	// Channel: the claimed channel, or a signed caller's own channel when none was named.
	Channel string
	// KioskID: a kiosk caller's app id; "" for every other caller.
	KioskID string
	Signed  bool
}

// Mismatch is the 403 when an authenticated caller claims to be someone else or to speak
// for a channel that is not its own.
func Mismatch(detail string) *problem.Problem {
	return problem.New(http.StatusForbidden, "caller-mismatch", "Caller does not match the request", detail)
}

// Bind checks a claim against the authenticated caller (nil for an unsigned request) and
// returns the actor to record. An unsigned request on a signed channel, or naming a kiosk,
// is the uniform 401 of callsign.
func Bind(caller *callsign.Identity, c Claim) (Actor, error) {
	if caller == nil {
		if RequiresSignature(c.Channel) || c.KioskID != "" {
			return Actor{}, callsign.Unauthenticated()
		}
		return Actor{ID: c.Operator, Channel: c.Channel}, nil
	}
	own := ChannelOf(caller.Kind)
	a := Actor{ID: caller.AppID, Channel: c.Channel, Signed: true}
	switch {
	case c.Channel == "":
		a.Channel = own
	case RequiresSignature(c.Channel) && signedChannels[c.Channel] != caller.Kind:
		return Actor{}, Mismatch("a " + kindLabel(caller.Kind) + " caller cannot act on the " + c.Channel + " channel")
	case !RequiresSignature(c.Channel) && own != "":
		// A bank or counter speaking for a resident's own channel would hide who acted.
		return Actor{}, Mismatch("a " + caller.Kind + " caller acts on the " + own + " channel, not " + c.Channel)
	}
	if caller.Kind == KindKiosk {
		if c.KioskID != "" && c.KioskID != caller.AppID {
			return Actor{}, Mismatch("a kiosk acts under its own id: the signed app id and the kiosk id differ")
		}
		a.KioskID = caller.AppID
	} else if c.KioskID != "" {
		return Actor{}, Mismatch("only a kiosk caller may name a kiosk id")
	}
	if c.Operator != "" && c.Operator != caller.AppID {
		return Actor{}, Mismatch("the signed caller is the actor: operator must be empty or the caller's app id")
	}
	return a, nil
}

func kindLabel(k string) string {
	if k == "" {
		return "registered"
	}
	return k
}

// Gate serves the routes of one function whose channel decides whether a call must be
// signed. V verifies signed calls (callsign.FromDeps).
type Gate struct{ V *callsign.Verifier }

// Route serves a route whose request names a channel: read decodes the plaintext request
// (decrypted when it was enveloped) and says what it claims; its error is the answer.
// A signed request goes through callsign.Require — 401 when it does not verify, 403 when
// the caller's routes do not include this one, every answer signed — and Bind; an
// unsigned one through Bind alone.
func Route[T any](g *Gate, read func(handler.Request) (T, Claim, error),
	fn func(handler.Request, T, Actor) (handler.Response, error)) runtime.HandlerFunc {
	serve := func(req handler.Request, caller *callsign.Identity) (handler.Response, error) {
		in, c, err := read(req)
		if err != nil {
			return handler.Response{}, err
		}
		a, err := Bind(caller, c)
		if err != nil {
			return handler.Response{}, err
		}
		return fn(req, in, a)
	}
	signed := func(req handler.Request) (handler.Response, error) {
		id, _ := callsign.Caller(req)
		return serve(req, &id)
	}
	return g.either(signed, func(req handler.Request) (handler.Response, error) { return serve(req, nil) })
}

// Open serves a route that names no channel (reads): anyone may call it unsigned, and a
// signed caller is verified and gets a signed answer, as its client insists on one.
func (g *Gate) Open(fn runtime.HandlerFunc) runtime.HandlerFunc { return g.either(fn, fn) }

// either sends a request that presents a signature through callsign.Require to signed,
// and any other to unsigned.
func (g *Gate) either(signed, unsigned runtime.HandlerFunc) runtime.HandlerFunc {
	verified := callsign.Require(g.V, signed)
	return func(req handler.Request) (handler.Response, error) {
		if Presented(req.Header) {
			return verified(req)
		}
		return unsigned(req)
	}
}

// signingHeaders are the request headers of the callsign scheme.
var signingHeaders = []string{callsign.HeaderAppID, callsign.HeaderKeyID, callsign.HeaderTimestamp, callsign.HeaderNonce,
	callsign.HeaderBodySM3, callsign.HeaderEnvelope, callsign.HeaderSignature}

// Presented reports whether the request carries any part of a signature.
func Presented(h http.Header) bool {
	return slices.ContainsFunc(signingHeaders, func(name string) bool { return h.Get(name) != "" })
}
