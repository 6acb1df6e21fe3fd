package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of login-poll: the page polls the scan result (004 §3(1),(4),(5)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("login-poll")
	r.NotBuilt("GET", "/{session}", "poll a login QR's scan result", "004 §3(4)")
	r.NotBuilt("POST", "/phone", "change phone number after scan login", "004 §3(2)")
	return r, nil
}
