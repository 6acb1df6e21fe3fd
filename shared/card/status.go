// Package card holds the card status machine of loss-report (002 二(二)1(1)③ and (10),
// 004 §1(7),(40)): temporary loss (临时挂失), formal loss (正式挂失), unlock (解挂), cancel
// (注销), the lapse of temporary losses, the versioned blacklist that offline terminals
// sync, and the bank sync of status changes.
//
// Statuses are ours (Status); the province's status code (AAZ502) for each is
// configuration (Codes) and travels in events and responses next to our name.
//
// Every change runs in one READ COMMITTED transaction that locks the card row first (so
// concurrent changes of one card serialise and none is lost), then writes the card, the
// history row, the blacklist change (taking the blacklist version counter's row lock, so
// versions commit in order), the audit entry (shared/audit) and the CardStatusChanged
// event (shared/outbox). Either all of it commits or none.
//
// The package has no HTTP: functions/loss-report maps its errors to problems.
package card

import (
	"fmt"
	"slices"
	"strings"
)

// Status is a card's status, as this platform names it.
type Status string

const (
	Normal        Status = "normal"         // 正常
	TemporaryLoss Status = "temporary_loss" // 临时挂失: lapses back to normal unless made formal
	FormalLoss    Status = "formal_loss"    // 正式挂失
	Cancelled     Status = "cancelled"      // 注销: terminal
)

// Statuses lists every status.
func Statuses() []Status { return []Status{Normal, TemporaryLoss, FormalLoss, Cancelled} }

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses(), s) }

// Listed reports whether a card in status s is on the blacklist: lost or cancelled cards
// must be refused by every terminal.
func (s Status) Listed() bool { return s == TemporaryLoss || s == FormalLoss || s == Cancelled }

// Action is a requested change.
type Action string

const (
	ActTemporaryLoss Action = "temporary-loss"
	ActFormalLoss    Action = "formal-loss"
	ActUnlock        Action = "unlock"
	ActCancel        Action = "cancel"
	// ActLapse is the system's: an expired temporary loss returns to normal.
	ActLapse Action = "lapse"
	// ActIssue records a card's creation in its history (seq 0); it is not a transition.
	ActIssue Action = "issue"
)

// Channel is where a change was requested.
type Channel string

const (
	ChannelPhone  Channel = "phone"  // 12333 hotline
	ChannelOnline Channel = "online" // H5 page / app
	ChannelBank   Channel = "bank"   // partner bank branch or bank app
	ChannelOutlet Channel = "outlet" // staffed service counter
	ChannelKiosk  Channel = "kiosk"  // self-service terminal
	// ChannelSystem is the platform itself (lapse); callers cannot use it.
	ChannelSystem Channel = "system"
)

// Channels lists the channels callers may name.
func Channels() []Channel {
	return []Channel{ChannelPhone, ChannelOnline, ChannelBank, ChannelOutlet, ChannelKiosk}
}

// Transition is one legal status change.
type Transition struct {
	Action   Action
	From, To Status
	// Channels that may request it.
	Channels []Channel
	// Identity: the caller asserts that the holder's identity was verified (ID card at
	// a counter or bank, e-card scan login online, ID reader plus face match at a kiosk).
	Identity bool
}

var (
	lossChannels     = []Channel{ChannelPhone, ChannelOnline, ChannelBank}
	verifiedChannels = []Channel{ChannelOnline, ChannelBank, ChannelOutlet, ChannelKiosk}
	inPerson         = []Channel{ChannelBank, ChannelOutlet, ChannelKiosk}
	counters         = []Channel{ChannelBank, ChannelOutlet}
)

// transitions is the rule table. Anything not here is illegal.
var transitions = []Transition{
	// 临时挂失: quick, by phone, online or at a bank, no identity check; lapses.
	{ActTemporaryLoss, Normal, TemporaryLoss, lossChannels, false},
	// 正式挂失: identity verified; from normal or to confirm a temporary loss.
	{ActFormalLoss, Normal, FormalLoss, verifiedChannels, true},
	{ActFormalLoss, TemporaryLoss, FormalLoss, verifiedChannels, true},
	// 解挂: a temporary loss from any channel; a formal loss in person, identity verified.
	{ActUnlock, TemporaryLoss, Normal, Channels(), false},
	{ActUnlock, FormalLoss, Normal, inPerson, true},
	// 注销: at a counter, identity verified (or on the authority's records); final.
	{ActCancel, Normal, Cancelled, counters, true},
	{ActCancel, TemporaryLoss, Cancelled, counters, true},
	{ActCancel, FormalLoss, Cancelled, counters, true},
	// The system's lapse of an expired temporary loss.
	{ActLapse, TemporaryLoss, Normal, []Channel{ChannelSystem}, false},
}

// Transitions returns a copy of the rule table.
func Transitions() []Transition {
	out := make([]Transition, len(transitions))
	for i, t := range transitions {
		t.Channels = slices.Clone(t.Channels)
		out[i] = t
	}
	return out
}

// Actions lists the actions callers may request.
func Actions() []Action { return []Action{ActTemporaryLoss, ActFormalLoss, ActUnlock, ActCancel} }

func knownAction(a Action) bool { return a == ActLapse || slices.Contains(Actions(), a) }

// Reasons callers may give. Reasons are codes, never free text: they go into events and
// the audit log, which must not carry personal data.
var reasons = []string{"lost", "stolen", "found", "damaged", "replaced", "deceased", "holder-request", "other"}

// Reasons lists the accepted reason codes.
func Reasons() []string { return slices.Clone(reasons) }

// ReasonLapsed is the reason of the system's lapse.
const ReasonLapsed = "lapsed"

// defaultReason is used when a caller gives none.
func defaultReason(a Action) string {
	switch a {
	case ActTemporaryLoss, ActFormalLoss:
		return "lost"
	case ActUnlock:
		return "found"
	case ActLapse:
		return ReasonLapsed
	default:
		return "holder-request"
	}
}

// Decide applies the rule table: the status that action leads to from current when
// requested on channel. An action that is illegal from current is a *TransitionError; a
// channel or identity assertion the transition does not accept is an *InputError.
func Decide(current Status, action Action, channel Channel, identityVerified bool) (Status, error) {
	if !knownAction(action) {
		return "", invalid("action", "want one of "+join(Actions()))
	}
	var t *Transition
	for i := range transitions {
		if transitions[i].Action == action && transitions[i].From == current {
			t = &transitions[i]
			break
		}
	}
	if t == nil {
		return "", &TransitionError{Action: action, Current: current}
	}
	if !slices.Contains(t.Channels, channel) {
		return "", invalid("channel", fmt.Sprintf("%s from %s is accepted on %s", action, current, join(t.Channels)))
	}
	if t.Identity && !identityVerified {
		return "", invalid("identityVerified", fmt.Sprintf("%s from %s needs the holder's identity verified", action, current))
	}
	return t.To, nil
}

// TransitionError: the action is not legal from the card's current status.
type TransitionError struct {
	Action      Action
	Current     Status
	CurrentCode string // the province code of Current, when known
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("card: %s is not possible while the card is %s", e.Action, e.Current)
}

// FieldError names one rejected input.
type FieldError struct {
	Name, Reason string
}

// InputError lists rejected inputs.
type InputError struct {
	Fields []FieldError
}

func (e *InputError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Name + ": " + f.Reason
	}
	return "card: invalid input (" + strings.Join(parts, "; ") + ")"
}

func invalid(name, reason string) *InputError {
	return &InputError{Fields: []FieldError{{name, reason}}}
}

func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
