package main

import (
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of login-poll: the page polls the scan result (004 §3(1),(4),(5));
// confirmed → a session token, once; expired → the page stops.
func New(d *platform.Deps) (*runtime.Router, error) {
	sessions, err := login.OpenSessions(d)
	if err != nil {
		return nil, err
	}
	r := runtime.NewRouter("login-poll")
	r.Get("/{session}", poll(sessions))
	r.Get("/session", whoami(sessions))
	r.Route("DELETE", "/session", logout(sessions))
	r.NotBuilt("POST", "/phone", "change phone number after scan login", "004 §3(2)")
	return r, nil
}
