package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of qr-code: the e-card scan-login QR (004 §3(1),(3)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("qr-code")
	r.NotBuilt("POST", "/", "create a login QR code", "004 §3(1)")
	r.NotBuilt("POST", "/{session}/refresh", "refresh a login QR code", "004 §3(3)")
	return r, nil
}
