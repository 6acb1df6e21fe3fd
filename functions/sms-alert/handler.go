package main

import (
	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of sms-alert: SMS through the China Mobile (CMPP), Telecom (SMGP)
// and Unicom (SGIP) gateways, templates, contact groups and verification codes (004
// §1(14),(16)). The rules live in shared/sms, the carrier protocols in its subpackages.
// Every route is a signed call (shared/callsign): services (login-poll's change-phone,
// loss-report) send messages and codes, staff administer groups and templates and read
// the daily report; which caller may use which route is the caller registry's business.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, codes, err := open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	signed := func(fn runtime.HandlerFunc) runtime.HandlerFunc { return callsign.Require(v, fn) }
	r := runtime.NewRouter("sms-alert")

	// Sending and records.
	r.Post("/messages", signed(sendMessage(svc)))
	r.Get("/messages", signed(messagesByID(svc)))
	r.Get("/messages/{id}", signed(getMessage(svc)))

	// Verification codes (issue, check), with abuse limits.
	r.Post("/codes", signed(issueCode(codes)))
	r.Post("/codes/verify", signed(verifyCode(codes)))

	// Administration: contact groups, templates; the daily report.
	r.Get("/groups", signed(listGroups(svc)))
	r.Route("PUT", "/groups/{group}", signed(putGroup(svc)))
	r.Route("PUT", "/groups/{group}/members/{member}", signed(putMember(svc)))
	r.Route("DELETE", "/groups/{group}/members/{member}", signed(deleteMember(svc)))
	r.Get("/templates", signed(listTemplates(svc)))
	r.Post("/templates/{code}", signed(publishTemplate(svc)))
	r.Get("/reports/daily", signed(dailyReport(svc)))

	// Events that become SMS (inbox-deduplicated; records are unique per message id and
	// recipient).
	for _, t := range []events.Type{events.SMSRequested, events.PhotoAudited, events.CardStatusChanged, events.DiscrepancyFound} {
		r.OnEvent(t, d.Postgres, svc.Consume)
	}
	return r, nil
}
