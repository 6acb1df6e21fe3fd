package main

import (
	"time"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/kiosk"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/platform"
)

// Buckets: failure workbooks go with the other reports; kiosk logs have a bucket of their
// own (kiosk_log_bucket), created on first use.
const (
	ReportBucket  = "reports"
	LogBucketName = "kiosk-logs"
)

// open builds the kiosk service from the warm dependencies and settings:
//
//	kiosk_offline_after  silence after which a kiosk is offline and alerted [3m]
//	kiosk_command_ttl    how long a command waits for its kiosk before it expires [24h]
//	kiosk_log_bucket     bucket of kiosk log files [kiosk-logs]
func open(d *platform.Deps) (*kiosk.Service, error) {
	keys, err := callsign.LoadServerKeys(d.Secrets)
	if err != nil {
		return nil, err
	}
	kr, err := pii.FromSecrets(d.Secrets, pii.PGStore{DB: d.Postgres})
	if err != nil {
		return nil, err
	}
	s := &kiosk.Service{DB: d.Postgres, MACKey: keys.RegistryMAC, Log: d.Log, Source: d.Config.EventSource,
		CardIndex: func(cardNo string) ([]byte, error) { return kr.BlindIndex(pii.KindExact, cardNo) },
		Reports:   &kiosk.S3Store{Client: d.S3, Bucket: ReportBucket, Create: true},
		Logs:      &kiosk.S3Store{Client: d.S3, Bucket: d.Env.String("kiosk_log_bucket", LogBucketName), Create: true},
	}
	s.OfflineAfter = d.Env.Duration("kiosk_offline_after", kiosk.OfflineAfter)
	s.CommandTTL = d.Env.Duration("kiosk_command_ttl", 24*time.Hour)
	if s.OfflineAfter <= 0 || s.CommandTTL <= 0 {
		d.Env.Fail("kiosk_offline_after, kiosk_command_ttl", "must be positive")
	}
	return s, d.Env.Err()
}
