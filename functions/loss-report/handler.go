package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of loss-report: temporary and formal loss, unlock, cancel, the
// blacklist terminals sync (002 二(二)1(10), 004 §1(7),(40)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("loss-report")
	r.NotBuilt("POST", "/cards/{card}/loss", "report a card lost (temporary or formal)", "004 §1(7)")
	r.NotBuilt("POST", "/cards/{card}/unlock", "unlock a lost card", "004 §1(7)")
	r.NotBuilt("POST", "/cards/{card}/cancel", "cancel a card", "004 §1(40)")
	r.NotBuilt("GET", "/blacklist", "blacklist delta sync", "002 二(二)1(10)")
	r.NotBuilt("GET", "/blacklist/{card}", "blacklist real-time check", "002 二(二)1(10)")
	return r, nil
}
