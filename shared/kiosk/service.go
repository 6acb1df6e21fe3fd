package kiosk

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ObjectStore keeps objects in one bucket (MinIO through its S3 API in production).
type ObjectStore interface {
	Put(ctx context.Context, key string, body []byte, contentType string) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// Service is the kiosk capability: registry, identity of kiosk calls, their events,
// commands, logs and fault alerts.
type Service struct {
	DB *pgxpool.Pool
	// MACKey is the caller registry's MAC key (callsign-registry-mac-key): kiosks enrol as
	// callsign callers, and admin rows are bound with it too.
	MACKey []byte
	// CardIndex is the blind index of a card number (shared/pii): card reads keep only it.
	CardIndex func(cardNo string) ([]byte, error)
	// Logs holds kiosk log files; Reports the failure workbooks of batch registrations.
	Logs, Reports ObjectStore
	// OfflineAfter: silence after which a kiosk counts as offline (default OfflineAfter).
	OfflineAfter time.Duration
	// CommandTTL: how long a command waits for its kiosk before it expires (default 24 h).
	CommandTTL time.Duration
	// Source is the CloudEvents source of the events this capability emits.
	Source string
	Log    *slog.Logger
	Now    func() time.Time
}

// Producer is the outbox producer name of this capability.
const Producer = "kiosk"

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Service) offlineAfter() time.Duration {
	if s.OfflineAfter > 0 {
		return s.OfflineAfter
	}
	return OfflineAfter
}

func (s *Service) commandTTL() time.Duration {
	if s.CommandTTL > 0 {
		return s.CommandTTL
	}
	return 24 * time.Hour
}

func (s *Service) source() string {
	if s.Source != "" {
		return s.Source
	}
	return "/functions/kiosk"
}
