package events

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Type is a CloudEvents "type" attribute value. Names are reverse-DNS under
// cn.sscard and end in a major version, so a breaking change to the data
// becomes a new type that can run side by side with the old one.
type Type string

const (
	ApplicationSubmitted    Type = "cn.sscard.card.application.submitted.v1"
	PhotoSubmitted          Type = "cn.sscard.card.photo.submitted.v1"
	PhotoAudited            Type = "cn.sscard.card.photo.audited.v1"
	CardStatusChanged       Type = "cn.sscard.card.status.changed.v1"
	ReconciliationCompleted Type = "cn.sscard.reconcile.completed.v1"
	DiscrepancyFound        Type = "cn.sscard.reconcile.discrepancy.found.v1"
	SMSRequested            Type = "cn.sscard.sms.requested.v1"
	SMSDelivered            Type = "cn.sscard.sms.delivered.v1"
	KioskHeartbeat          Type = "cn.sscard.kiosk.heartbeat.v1"
	KioskCommandIssued      Type = "cn.sscard.kiosk.command.issued.v1"
)

// Spec describes one event type.
type Spec struct {
	Type Type
	// Source is a URI-reference pattern. A "{name}" placeholder stands for
	// exactly one non-empty path segment of [A-Za-z0-9._-]. Validate binds
	// placeholders as follows: {function} must be one of Producers; any other
	// {x} must equal the data field whose JSON name is x (e.g. a heartbeat
	// from /kiosks/K1 must carry kioskId "K1"), so a kiosk cannot speak for
	// another one.
	Source      string
	Producers   []string   // function names (or "edge-bridge") that emit it
	Description string     // one line, English
	NewData     func() any // pointer to a fresh zero data struct
}

// edgeBridge is the on-premises bridge that relays kiosk traffic; it is a
// producer but not one of the serverless functions.
const edgeBridge = "edge-bridge"

// placeholderFunction is the one source placeholder not bound to a data
// field: it names the emitting function, for types with several producers.
const placeholderFunction = "function"

var catalog = map[Type]Spec{
	ApplicationSubmitted: {
		Type:        ApplicationSubmitted,
		Source:      "/functions/card-apply",
		Producers:   []string{"card-apply"},
		Description: "A card application was accepted on some channel and is queued for card production.",
		NewData:     func() any { return new(ApplicationSubmittedData) },
	},
	PhotoSubmitted: {
		Type:        PhotoSubmitted,
		Source:      "/functions/card-apply",
		Producers:   []string{"card-apply"},
		Description: "An applicant photo was stored in object storage and awaits audit.",
		NewData:     func() any { return new(PhotoSubmittedData) },
	},
	PhotoAudited: {
		Type:        PhotoAudited,
		Source:      "/functions/card-apply",
		Producers:   []string{"card-apply"},
		Description: "An operator approved or rejected an applicant photo.",
		NewData:     func() any { return new(PhotoAuditedData) },
	},
	CardStatusChanged: {
		Type:        CardStatusChanged,
		Source:      "/functions/loss-report",
		Producers:   []string{"loss-report"},
		Description: "A card moved between status codes (e.g. loss report, temporary suspension, cancellation); carries the new blacklist version.",
		NewData:     func() any { return new(CardStatusChangedData) },
	},
	ReconciliationCompleted: {
		Type:        ReconciliationCompleted,
		Source:      "/functions/reconcile",
		Producers:   []string{"reconcile"},
		Description: "A daily reconciliation run against one bank finished.",
		NewData:     func() any { return new(ReconciliationCompletedData) },
	},
	DiscrepancyFound: {
		Type:        DiscrepancyFound,
		Source:      "/functions/reconcile",
		Producers:   []string{"reconcile"},
		Description: "A reconciliation run found a transaction that does not match the bank's file.",
		NewData:     func() any { return new(DiscrepancyFoundData) },
	},
	SMSRequested: {
		Type:        SMSRequested,
		Source:      "/functions/{function}",
		Producers:   []string{"card-apply", "kiosk", "loss-report", "photo-audit-alert", "qr-code"},
		Description: "A function asks sms-alert to send a templated SMS to a person identified only by reference.",
		NewData:     func() any { return new(SMSRequestedData) },
	},
	SMSDelivered: {
		Type:        SMSDelivered,
		Source:      "/functions/sms-alert",
		Producers:   []string{"sms-alert"},
		Description: "A carrier gateway reported the final delivery status of an SMS.",
		NewData:     func() any { return new(SMSDeliveredData) },
	},
	KioskHeartbeat: {
		Type:        KioskHeartbeat,
		Source:      "/kiosks/{kioskId}",
		Producers:   []string{edgeBridge},
		Description: "Periodic liveness and health report of a self-service kiosk, relayed by the edge bridge.",
		NewData:     func() any { return new(KioskHeartbeatData) },
	},
	KioskCommandIssued: {
		Type:        KioskCommandIssued,
		Source:      "/functions/kiosk",
		Producers:   []string{"kiosk"},
		Description: "A remote maintenance command was issued to a kiosk.",
		NewData:     func() any { return new(KioskCommandIssuedData) },
	},
}

// Lookup returns the spec of t. The returned Spec is a copy: callers may not
// alter the catalog through it.
func Lookup(t Type) (Spec, bool) {
	s, ok := catalog[t]
	if !ok {
		return Spec{}, false
	}
	s.Producers = slices.Clone(s.Producers)
	return s, true
}

// All returns every spec, sorted by Type.
func All() []Spec {
	out := make([]Spec, 0, len(catalog))
	for t := range catalog {
		s, _ := Lookup(t)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(string(a.Type), string(b.Type)) })
	return out
}

// dataType is the struct type behind s.NewData.
func (s Spec) dataType() reflect.Type {
	return reflect.TypeOf(s.NewData()).Elem()
}

// The catalog is static, so a mistake in it is a programming error; checking
// at init makes any test or binary importing the package fail immediately
// instead of rejecting events at run time.
func init() {
	if err := checkCatalog(); err != nil {
		panic("events: bad catalog: " + err.Error())
	}
}

func checkCatalog() error {
	for t, s := range catalog {
		if s.Type != t {
			return fmt.Errorf("%s: Spec.Type is %s", t, s.Type)
		}
		if s.NewData == nil || len(s.Producers) == 0 || s.Description == "" {
			return fmt.Errorf("%s: incomplete spec", t)
		}
		for _, p := range s.Producers {
			if p != edgeBridge && !isFunction(p) {
				return fmt.Errorf("%s: unknown producer %q", t, p)
			}
		}
		pt := reflect.TypeOf(s.NewData())
		if pt.Kind() != reflect.Pointer || pt.Elem().Kind() != reflect.Struct {
			return fmt.Errorf("%s: NewData must return a pointer to a struct", t)
		}
		fields, err := structFields(pt.Elem())
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		names, err := placeholders(s.Source)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		for _, n := range names {
			if n == placeholderFunction {
				continue
			}
			f, ok := fieldByName(fields, n)
			if !ok || !f.required || f.typ.Kind() != reflect.String {
				return fmt.Errorf("%s: source placeholder {%s} needs a required string data field %q", t, n, n)
			}
		}
	}
	for _, r := range routes {
		if _, ok := catalog[r.Type]; !ok {
			return fmt.Errorf("route for unknown type %s", r.Type)
		}
		if !isFunction(r.Consumer) {
			return fmt.Errorf("route %s: unknown consumer %q", r.Type, r.Consumer)
		}
	}
	return nil
}

// placeholders lists the {names} in a source pattern and rejects patterns
// whose placeholders are not whole path segments.
func placeholders(pattern string) ([]string, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("source pattern %q must be an absolute path", pattern)
	}
	var names []string
	for _, seg := range strings.Split(pattern, "/")[1:] {
		if name, ok := placeholderName(seg); ok {
			names = append(names, name)
			continue
		}
		if seg == "" || strings.ContainsAny(seg, "{}") {
			return nil, fmt.Errorf("source pattern %q: bad segment %q", pattern, seg)
		}
	}
	return names, nil
}

func placeholderName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' && !strings.ContainsAny(seg[1:len(seg)-1], "{}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// matchSource matches source against pattern and returns the placeholder
// bindings. Matching is by whole segments so "/kiosks/a/b" never matches
// "/kiosks/{kioskId}".
func matchSource(pattern, source string) (map[string]string, bool) {
	ps := strings.Split(pattern, "/")
	ss := strings.Split(source, "/")
	if len(ps) != len(ss) {
		return nil, false
	}
	bind := map[string]string{}
	for i, p := range ps {
		if name, ok := placeholderName(p); ok {
			if !isSegment(ss[i]) {
				return nil, false
			}
			bind[name] = ss[i]
			continue
		}
		if p != ss[i] {
			return nil, false
		}
	}
	return bind, true
}

func isSegment(s string) bool {
	// "." and ".." would be rewritten by any URL normaliser on the way.
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
