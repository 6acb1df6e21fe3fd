package main

import (
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of reconcile: the daily reconciliation of payments against the
// channels' statements and the HIS (长款/短款, 003 5.3), and of card statuses against the
// bank's (银社对账, 004 §1(30)). The schedule (cron-connector's POST or a Knative
// PingSource event) and a staff member's signed call start the same job (shared/reconcile);
// every route is for signed staff callers only.
func New(d *platform.Deps) (*runtime.Router, error) {
	svc, err := open(d)
	if err != nil {
		return nil, err
	}
	v, err := callsign.FromDeps(d)
	if err != nil {
		return nil, err
	}
	r := runtime.NewRouter("reconcile")
	r.OnSchedule(scheduled(svc))

	// Runs: start one, list, one with its counts, its summary, its report.
	r.Post("/runs", staff(v, startRun(svc)))
	r.Get("/runs", staff(v, listRuns(svc)))
	r.Get("/runs/{id}", staff(v, getRun(svc)))
	r.Get("/runs/{id}/summary", staff(v, runSummary(svc)))
	r.Get("/runs/{id}/report", staff(v, runReport(svc)))
	r.Get("/discrepancies", staff(v, listDiscrepancies(svc)))

	// Refunds of money taken with no HIS settlement: approval, then the channel.
	r.Get("/refunds", staff(v, listRefunds(svc)))
	r.Get("/refunds/{refundNo}", staff(v, getRefund(svc)))
	r.Post("/refunds/{refundNo}/approve", staff(v, decideRefund(svc, true)))
	r.Post("/refunds/{refundNo}/reject", staff(v, decideRefund(svc, false)))
	return r, nil
}
