// Package kiosk holds the kiosk registry's domain logic: heartbeats from the edge-bridge
// on each self-service terminal and the status derived from them (001 2.1–2.3, 003 5.2).
package kiosk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
)

// ErrUnknown reports a kiosk that has never been seen.
var ErrUnknown = errors.New("unknown kiosk")

// OfflineAfter is how long without a heartbeat before a kiosk counts as offline.
const OfflineAfter = 3 * time.Minute

// Status is what operators see of one kiosk.
type Status struct {
	KioskID       string    `json:"kioskId"`
	Registered    bool      `json:"registered"`
	Online        bool      `json:"online"`
	LastSeenAt    time.Time `json:"lastSeenAt"`
	LastStatus    string    `json:"lastStatus"`
	ReaderPresent bool      `json:"readerPresent"`
	Version       string    `json:"version"`
	Heartbeats    int64     `json:"heartbeats"`
}

// RecordHeartbeat stores one heartbeat and moves the kiosk's last-seen state forward (an
// older heartbeat arriving late is kept in history but does not roll the state back).
// It runs inside the inbox transaction, so a redelivered event changes nothing.
func RecordHeartbeat(ctx context.Context, tx pgx.Tx, hb events.KioskHeartbeatData, source, eventID string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO kiosks (kiosk_id, last_seen_at, last_status, reader_present, version)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (kiosk_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, last_status = EXCLUDED.last_status,
			reader_present = EXCLUDED.reader_present, version = EXCLUDED.version
		WHERE kiosks.last_seen_at < EXCLUDED.last_seen_at`,
		hb.KioskID, hb.At, string(hb.Status), hb.ReaderPresent, hb.Version); err != nil {
		return fmt.Errorf("kiosk %s: %w", hb.KioskID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO kiosk_heartbeats (kiosk_id, at, status, reader_present, queued_events, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		hb.KioskID, hb.At, string(hb.Status), hb.ReaderPresent, hb.QueuedEvents, source, eventID); err != nil {
		return fmt.Errorf("kiosk %s heartbeat: %w", hb.KioskID, err)
	}
	return nil
}

// Querier is the part of a pool or transaction that reads.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Lookup returns the status of kiosk id as of now.
func Lookup(ctx context.Context, q Querier, id string, now time.Time) (Status, error) {
	s := Status{KioskID: id}
	err := q.QueryRow(ctx, `SELECT k.registered, k.last_seen_at, k.last_status, k.reader_present, k.version,
			(SELECT count(*) FROM kiosk_heartbeats h WHERE h.kiosk_id = k.kiosk_id)
		FROM kiosks k WHERE k.kiosk_id = $1`, id).
		Scan(&s.Registered, &s.LastSeenAt, &s.LastStatus, &s.ReaderPresent, &s.Version, &s.Heartbeats)
	if errors.Is(err, pgx.ErrNoRows) {
		return Status{}, ErrUnknown
	}
	if err != nil {
		return Status{}, err
	}
	s.Online = now.Sub(s.LastSeenAt) <= OfflineAfter
	return s, nil
}
