package main

import (
	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of photo-audit-alert: photos not audited within 3 working days
// trigger an SMS to the audit managers; staff query and export them (004 §3(22),(23)). The
// rules live in shared/photoaudit and shared/workday. Every route is a signed call from a
// staff caller (callsign, kind "staff"); its routes decide whether it may see names and ID
// numbers in full (/overdue/export/full) or change the working-day calendar.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, err := open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	staff := func(fn runtime.HandlerFunc) runtime.HandlerFunc { return callsign.Require(v, staffOnly(fn)) }
	r := runtime.NewRouter("photo-audit-alert")

	// The audit clock: started by PhotoSubmitted, stopped by PhotoAudited (inbox: once each).
	r.OnEvent(events.PhotoSubmitted, d.Postgres, clockEvent(svc.OnPhotoSubmitted))
	r.OnEvent(events.PhotoAudited, d.Postgres, clockEvent(svc.OnPhotoAudited))

	// Schedule (cron-connector POST or PingSource): once per China-time working day, one
	// SMSRequested to the contact group when photos are overdue.
	r.OnSchedule(scheduled(svc))

	// Query and export (004 §3(22)).
	r.Get("/overdue", staff(overdue(svc)))
	r.Get("/overdue/export", staff(export(svc, false)))
	r.Get("/overdue/export/full", staff(export(svc, true)))

	// The working-day calendar administrators maintain (holidays, make-up working days).
	r.Get("/calendar", staff(calendar(svc)))
	r.Route("PUT", "/calendar/{date}", staff(setDay(svc)))
	r.Route("DELETE", "/calendar/{date}", staff(removeDay(svc)))
	return r, nil
}
