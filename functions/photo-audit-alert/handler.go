package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of photo-audit-alert: photos not audited within 3 working days
// trigger an SMS; operators query and export them (004 §3(22),(23)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("photo-audit-alert")
	r.OnSchedule(runtime.NotBuiltFunc("overdue photo-audit scan", "004 §3(22)"))
	r.NotBuilt("GET", "/overdue", "overdue photo-audit query", "004 §3(23)")
	r.NotBuilt("GET", "/overdue/export", "overdue photo-audit export", "004 §3(23)")
	return r, nil
}
