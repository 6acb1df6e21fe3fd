package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of reconcile: the daily reconciliation of payments against bank
// records, 长款/短款 (003 5.3, 004 §1(30)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("reconcile")
	r.OnSchedule(runtime.NotBuiltFunc("daily bank reconciliation run", "003 5.3"))
	r.NotBuilt("POST", "/runs", "start a reconciliation run", "004 §1(30)")
	r.NotBuilt("GET", "/runs/{id}", "reconciliation run result", "003 5.3")
	r.NotBuilt("GET", "/discrepancies", "discrepancy query", "003 5.3")
	return r, nil
}
