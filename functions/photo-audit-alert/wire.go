package main

import (
	"errors"

	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/photoaudit"
	"github.com/sscard/platform/shared/platform"
)

// open assembles the service from the function's settings (photoaudit.LoadConfig lists
// them), the person register (for the export's decryption) and the audit log.
func open(d *platform.Deps) (*photoaudit.Service, error) {
	if d.Postgres == nil {
		return nil, errors.New("photo-audit-alert needs Postgres")
	}
	cfg, err := photoaudit.LoadConfig(d.Env)
	if err != nil {
		return nil, err
	}
	people, err := person.Open(d.Postgres, d.Secrets)
	if err != nil {
		return nil, err
	}
	if cfg.TriggerClock {
		d.Log.Warn("photo_audit_trigger_clock is on: a PingSource event's time sets the run's day (development/test only)")
	}
	return &photoaudit.Service{Pool: d.Postgres, People: people, Audit: d.Audit, Config: cfg, Log: d.Log}, nil
}
