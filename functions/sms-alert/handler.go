package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of sms-alert: SMS through the China Mobile (CMPP), Telecom (SMGP)
// and Unicom (SGIP) gateways, templates and verification codes (004 §1(14),(16)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("sms-alert")
	r.NotBuilt("POST", "/messages", "send a templated SMS", "004 §1(14)")
	r.NotBuilt("POST", "/codes", "send an SMS verification code", "004 §1(16)")
	r.NotBuilt("POST", "/codes/verify", "check an SMS verification code", "004 §1(16)")
	return r, nil
}
