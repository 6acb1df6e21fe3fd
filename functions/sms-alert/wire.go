package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/gateway"
)

// open assembles the SMS service from the function's settings and starts the dispatcher
// that sends queued records through the configured carrier gateways (see package
// gateway for the settings). Settings of its own:
//
//	sms_home_segments      comma-separated number segments of the province (empty: all local)
//	sms_code_interval      one code per phone and per client per interval (60s)
//	sms_code_per_day       codes per phone and per client per China day (10)
//	sms_code_ttl           validity of a code (5m)
//	sms_code_attempts      wrong tries before a code is void (5)
//	sms_report_wait        how long a submitted SMS waits for its delivery report (72h)
func open(d *platform.Deps) (*sms.Service, *sms.Codes, error) {
	if d.Postgres == nil || d.Redis == nil {
		return nil, nil, errors.New("sms-alert needs Postgres and Redis")
	}
	kr, err := pii.FromSecrets(d.Secrets, pii.PGStore{DB: d.Postgres})
	if err != nil {
		return nil, nil, err
	}
	persons := person.NewStore(d.Postgres, kr)
	routes, err := sms.NewRoutes(nil, splitList(d.Env.String("sms_home_segments", "")))
	if err != nil {
		return nil, nil, err
	}
	svc := &sms.Service{Pool: d.Postgres, Protect: kr, Persons: persons, Routes: routes}
	limits := sms.DefaultCodeLimits
	limits.Interval = d.Env.Duration("sms_code_interval", limits.Interval)
	limits.PerDay = d.Env.Int("sms_code_per_day", limits.PerDay, 1, 1000)
	limits.TTL = d.Env.Duration("sms_code_ttl", limits.TTL)
	limits.MaxAttempts = d.Env.Int("sms_code_attempts", limits.MaxAttempts, 1, 20)
	codes := &sms.Codes{Redis: d.Redis, Service: svc, Limits: limits}

	disp := &sms.Dispatcher{Service: svc, Log: d.Log, ReportWait: d.Env.Duration("sms_report_wait", 72*time.Hour)}
	gws, err := gateway.Open(d.Env, d.Secrets, d.Log, func(ch string, r sms.Report) error {
		return disp.OnReport(context.Background(), ch, r)
	})
	if err != nil {
		return nil, nil, err
	}
	if err := d.Env.Err(); err != nil {
		return nil, nil, err
	}
	disp.Gateways = map[string]sms.Gateway{}
	for ch, g := range gws {
		disp.Gateways[ch] = g
	}
	if len(gws) == 0 {
		// Nothing to send through: records stay queued for an instance that has gateways.
		d.Log.Warn("no SMS gateway configured: records stay queued (set sms_<channel>_addr)")
		return svc, codes, nil
	}
	// The dispatcher lives as long as the instance; records are durable, so a stop at any
	// point loses nothing (a claimed record is retried when its lease runs out).
	go disp.Run(context.Background())
	return svc, codes, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
