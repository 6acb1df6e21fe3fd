package main

import (
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of login-poll: the page polls the scan result (004 §3(1),(4),(5));
// confirmed → a session token, once; expired → the page stops. A holder logged in by
// scan may change the phone number on record (004 §3(2)).
func New(d *platform.Deps) (*runtime.Router, error) {
	sessions, err := login.OpenSessions(d)
	if err != nil {
		return nil, err
	}
	phone, err := login.OpenPhoneChange(d, sessions)
	if err != nil {
		return nil, err
	}
	r := runtime.NewRouter("login-poll")
	r.Get("/{session}", poll(sessions))
	r.Get("/session", whoami(sessions))
	r.Route("DELETE", "/session", logout(sessions))
	r.Post("/phone/code", sendPhoneCode(phone))
	r.Post("/phone", changePhone(phone))
	return r, nil
}
