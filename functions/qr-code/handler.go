package main

import (
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of qr-code: the e-card scan-login QR (004 §3(1),(3)) and the H5
// login page that shows it.
func New(d *platform.Deps) (*runtime.Router, error) {
	people, err := person.Open(d.Postgres, d.Secrets)
	if err != nil {
		return nil, err
	}
	flow, local, err := login.Open(d, people)
	if err != nil {
		return nil, err
	}
	page, err := newPage(d)
	if err != nil {
		return nil, err
	}
	r := runtime.NewRouter("qr-code")
	r.Get("/", page.serve)                      // the H5 login page
	r.Post("/", start(flow))                    // a new login QR
	r.Post("/{session}/refresh", refresh(flow)) // 刷新: a new QR, the old one cancelled
	r.Post("/ecard/notify", notify(flow))       // the e-card platform's signed notices
	if local != nil {
		r.Post("/local-ecard/act", act(flow, local)) // the local authority's "phone"
	}
	return r, nil
}
