package main

import (
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
)

// New wires the routes of card-apply: applications with photo, identity checks, progress
// and logistics (001 3.1, 002, 004 §1(6) §2).
func New(d *platform.Deps) (*runtime.Router, error) {
	r := runtime.NewRouter("card-apply")
	r.NotBuilt("POST", "/applications", "card application", "001 3.1.1, 004 §1(6)")
	r.NotBuilt("GET", "/applications/{id}", "application detail", "001 3.1.3")
	r.NotBuilt("PUT", "/applications/{id}/photo", "application photo upload", "004 §3(24)")
	r.NotBuilt("GET", "/progress", "card production progress query", "001 3.1.3, 004 §3(12)")
	r.NotBuilt("POST", "/batches", "employer batch application (xlsx)", "001 2.1")
	return r, nil
}
