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
		"POST card-apply /progress",
		"GET loss-report /cards/{card}",
		"GET loss-report /cards/{card}/history",
		"POST loss-report /cards/{card}/loss",
		"POST loss-report /cards/{card}/unlock",
		"POST loss-report /cards/{card}/cancel",
		"POST face-match /verify",
		"POST face-match /enrolments",
		"GET face-match /prechecks/{application}",
	},
	KindKiosk: {
		"POST card-apply /applications",
		"GET card-apply /applications/{id}",
		"PUT card-apply /applications/{id}/photo",
		"POST card-apply /applications/{id}/activate",
		"POST card-apply /applications/{id}/withdraw",
		"POST card-apply /replacements",
		"POST card-apply /progress",
		"GET loss-report /cards/{card}",
		"POST loss-report /cards/{card}/loss",
		"POST loss-report /cards/{card}/unlock",
		"GET loss-report /blacklist",
		"GET loss-report /blacklist/snapshot",
		"GET loss-report /blacklist/{cardNo}",
		"POST face-match /verify",
		"POST kiosk /kiosks/{id}/events",
		"GET kiosk /kiosks/{id}/commands",
		"POST kiosk /kiosks/{id}/logs",
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
	KindStaff: {
		"POST reconcile /runs",
		"GET reconcile /runs",
		"GET reconcile /runs/{id}",
		"GET reconcile /runs/{id}/summary",
		"GET reconcile /runs/{id}/report",
		"GET reconcile /discrepancies",
		"GET reconcile /refunds",
		"GET reconcile /refunds/{refundNo}",
		"POST reconcile /refunds/{refundNo}/approve",
		"POST reconcile /refunds/{refundNo}/reject",
		// The masked overdue photo-audit query and export and the calendar read. Full
		// names and ID numbers (GET photo-audit-alert /overdue/export/full) and calendar
		// changes (PUT, DELETE photo-audit-alert /calendar/{date}) are granted by naming them.
		"GET photo-audit-alert /overdue",
		"GET photo-audit-alert /overdue/export",
		"GET photo-audit-alert /calendar",
		// SMS administration and the daily report. Sending and codes are for the platform's
		// own services, granted by naming them.
		"GET sms-alert /groups",
		"PUT sms-alert /groups/{group}/members/{member}",
		"DELETE sms-alert /groups/{group}/members/{member}",
		"GET sms-alert /templates",
		"GET sms-alert /reports/daily",
		"GET sms-alert /messages",
		"GET sms-alert /messages/{id}",
	},
	// Administrators of the bureau: the library's upkeep and the 1:N search (audited).
	KindAdmin: {
		"POST face-match /identify",
		"POST face-match /enrolments",
		"DELETE face-match /enrolments/{person}",
		"GET face-match /prechecks/{application}",
		"POST face-match /index/snapshot",
		// Kiosk administrators: the registry, commands, self-checks and logs of the kiosks
		// of their region (the kiosk function scopes every answer by that region).
		"* kiosk /kiosks/*",
		"* kiosk /kiosk-batches/*",
		"* kiosk /kiosk-commands",
	},
}

// Routes returns the preset routes of a caller kind (nil for a kind without a preset).
func Routes(kind string) []string { return slices.Clone(presets[kind]) }

// Kinds lists the kinds that have presets.
func Kinds() []string { return []string{KindOutlet, KindKiosk, KindBank, KindStaff, KindAdmin} }
