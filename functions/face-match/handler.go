package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of face-match: 1:1 person-vs-card-photo and 1:N search of the
// card photo library (000 §4, 004 §3(25)).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("face-match")
	r.NotBuilt("POST", "/verify", "1:1 face verification against the card photo", "004 §3(25)")
	r.NotBuilt("POST", "/search", "1:N search of the card photo library", "000 §4")
	return r, nil
}
