package events

import (
	"cmp"
	"slices"
)

// functions are the deployed function names; routes and producers may only
// name these (plus edge-bridge as a producer), so a typo cannot silently
// create a subscription nobody serves.
var functions = []string{
	"card-apply",
	"face-match",
	"kiosk",
	"login-poll",
	"loss-report",
	"photo-audit-alert",
	"qr-code",
	"reconcile",
	"sms-alert",
}

func isFunction(name string) bool { return slices.Contains(functions, name) }

// Route says that Consumer (a function name, e.g. "kiosk") receives events
// of Type. The infra code turns these into broker triggers.
type Route struct {
	Type     Type
	Consumer string
}

// routes is the subscription table. Types without a consumer yet
// (ReconciliationCompleted, SMSDelivered, KioskCommandIssued) are simply
// absent; they are still published so that audit and later consumers can
// attach without touching producers.
var routes = []Route{
	// The simulated card producer inside card-apply picks submitted
	// applications up in batches.
	{ApplicationSubmitted, "card-apply"},
	// photo-audit-alert starts the 3-working-day audit clock; face-match
	// enrols the photo for later identity checks.
	{PhotoSubmitted, "photo-audit-alert"},
	{PhotoSubmitted, "face-match"},
	// The audit clock stops; the applicant is told the outcome.
	{PhotoAudited, "photo-audit-alert"},
	{PhotoAudited, "sms-alert"},
	// face-match enrols approved card photos in its 1:N library.
	{PhotoAudited, "face-match"},
	// loss-report hosts the bank sync adapter; kiosk pushes the new
	// blacklist version to terminals.
	{CardStatusChanged, "loss-report"},
	{CardStatusChanged, "sms-alert"},
	{CardStatusChanged, "kiosk"},
	{DiscrepancyFound, "sms-alert"},
	{SMSRequested, "sms-alert"},
	{KioskHeartbeat, "kiosk"},
}

// Routes returns the routing table sorted by (Type, Consumer).
func Routes() []Route {
	out := slices.Clone(routes)
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Consumer, b.Consumer))
	})
	return out
}

// Subscribers returns the sorted names of the functions consuming t; empty
// (not nil) when nobody does.
func Subscribers(t Type) []string {
	out := []string{}
	for _, r := range routes {
		if r.Type == t {
			out = append(out, r.Consumer)
		}
	}
	slices.Sort(out)
	return out
}
