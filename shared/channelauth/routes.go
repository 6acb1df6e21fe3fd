package channelauth

import "slices"

// Presets are the callsign routes ("METHOD function /pattern") a caller of each kind is
// registered with by default (infra/cmd/callers). They are access-control data: a caller
// gets exactly these unless the operator names others.
var presets = map[string][]string{
	KindOutlet: {
		"POST card-apply /applications",
		"GET card-apply /applications/{id}",
		"PUT card-apply /applications/{id}/photo",
		"POST card-apply /applications/{id}/photo-audit",
		"POST card-apply /applications/{id}/activate",
		"POST card-apply /applications/{id}/withdraw",
		"POST card-apply /replacements",
		"GET card-apply /progress",
		"GET loss-report /cards/{card}",
		"GET loss-report /cards/{card}/history",
		"POST loss-report /cards/{card}/loss",
		"POST loss-report /cards/{card}/unlock",
		"POST loss-report /cards/{card}/cancel",
	},
	KindKiosk: {
		"POST card-apply /applications",
		"GET card-apply /applications/{id}",
		"PUT card-apply /applications/{id}/photo",
		"POST card-apply /applications/{id}/activate",
		"POST card-apply /applications/{id}/withdraw",
		"POST card-apply /replacements",
		"GET card-apply /progress",
		"GET loss-report /cards/{card}",
		"POST loss-report /cards/{card}/loss",
		"POST loss-report /cards/{card}/unlock",
		"GET loss-report /blacklist",
		"GET loss-report /blacklist/snapshot",
		"GET loss-report /blacklist/{cardNo}",
		"POST kiosk /kiosks/{id}/events",
		"GET kiosk /kiosks/{id}/commands",
		"POST kiosk /kiosks/{id}/logs",
	},
	// Kiosk administrators: the registry, commands, self-checks and logs of the kiosks of
	// their region (the kiosk function scopes every answer by that region).
	KindAdmin: {
		"* kiosk /kiosks/*",
		"* kiosk /kiosk-batches/*",
		"* kiosk /kiosk-commands",
	},
	KindBank: {
		"POST card-apply /applications",
		"GET card-apply /applications/{id}",
		"PUT card-apply /applications/{id}/photo",
		"POST card-apply /applications/{id}/activate",
		"POST card-apply /applications/{id}/withdraw",
		"POST card-apply /replacements",
		"GET loss-report /cards/{card}",
		"GET loss-report /cards/{card}/history",
		"POST loss-report /cards/{card}/loss",
		"POST loss-report /cards/{card}/unlock",
		"POST loss-report /cards/{card}/cancel",
		"GET loss-report /blacklist",
		"GET loss-report /blacklist/snapshot",
		"GET loss-report /blacklist/{cardNo}",
	},
}

// Routes returns the preset routes of a caller kind (nil for a kind without a preset).
func Routes(kind string) []string { return slices.Clone(presets[kind]) }

// Kinds lists the kinds that have presets.
func Kinds() []string { return []string{KindOutlet, KindKiosk, KindBank, KindAdmin} }
