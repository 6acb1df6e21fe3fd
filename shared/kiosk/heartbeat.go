// Package kiosk holds the kiosk capability's domain logic (001 2.1–2.3, 003 5.2,
// 004 §3(24)): the registry administrators keep by region, the identity of each kiosk (its
// SM2 key, enrolled as a callsign caller), the events kiosks post through the edge-bridge
// (heartbeats, card reads, self-checks, command results), remote commands, log files and
// the fault alerts sent to maintainers.
package kiosk

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
)

// OfflineAfter is the default silence after which a kiosk counts as offline.
const OfflineAfter = 3 * time.Minute

// Component states a heartbeat reports.
const (
	ComponentOK     = "ok"
	ComponentFault  = "fault"
	ComponentAbsent = "absent"
)

// Running states shown per component and for the kiosk.
const (
	RunningNormal   = "normal"
	RunningAbnormal = "abnormal"
)

// Component is one part of a kiosk as its newest heartbeat reported it.
type Component struct {
	State   string `json:"state"`   // ok, fault, absent
	Running string `json:"running"` // normal, abnormal
}

// Health is what operators see of a kiosk's running state.
type Health struct {
	Online       bool                 `json:"online"`
	LastSeenAt   *time.Time           `json:"lastSeenAt,omitempty"`
	LastStatus   string               `json:"lastStatus,omitempty"`
	Version      string               `json:"version,omitempty"`
	Running      string               `json:"running"` // normal unless a component is at fault
	Components   map[string]Component `json:"components"`
	QueuedEvents *int                 `json:"queuedEvents,omitempty"`
	Paused       bool                 `json:"paused"`
	Heartbeats   int64                `json:"heartbeats"`
}

// health derives the running state at now: online is computed at read time from the
// last heartbeat, so no job has to flip it.
func health(lastSeen *time.Time, status string, comps map[string]string, queued *int, now time.Time, silence time.Duration) Health {
	h := Health{LastSeenAt: lastSeen, LastStatus: status, Running: RunningNormal, Components: map[string]Component{},
		QueuedEvents: queued}
	h.Online = lastSeen != nil && now.Sub(*lastSeen) <= silence
	for name, st := range comps {
		c := Component{State: st, Running: RunningNormal}
		if st == ComponentFault {
			c.Running, h.Running = RunningAbnormal, RunningAbnormal
		}
		h.Components[name] = c
	}
	if status == string(events.KioskStatusFault) {
		h.Running = RunningAbnormal
	}
	return h
}

// RecordHeartbeat stores one heartbeat CloudEvent (the broker path of older bridges) and
// moves the kiosk's last-seen state forward (an older heartbeat arriving late is kept in
// history but does not roll the state back). It runs inside the inbox transaction, so a
// redelivered event changes nothing. Signed kiosks post heartbeats through Record instead.
func RecordHeartbeat(ctx context.Context, tx pgx.Tx, hb events.KioskHeartbeatData, source, eventID string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO kiosks (kiosk_id, last_seen_at, last_status, reader_present, version)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (kiosk_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, last_status = EXCLUDED.last_status,
			reader_present = EXCLUDED.reader_present, version = EXCLUDED.version
		WHERE kiosks.last_seen_at IS NULL OR kiosks.last_seen_at < EXCLUDED.last_seen_at`,
		hb.KioskID, hb.At, string(hb.Status), hb.ReaderPresent, hb.Version); err != nil {
		return fmt.Errorf("kiosk %s: %w", hb.KioskID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO kiosk_heartbeats (kiosk_id, at, status, reader_present, queued_events, event_source, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		hb.KioskID, hb.At, string(hb.Status), hb.ReaderPresent, hb.QueuedEvents, source, eventID); err != nil {
		return fmt.Errorf("kiosk %s heartbeat: %w", hb.KioskID, err)
	}
	// A heartbeat ends an offline episode.
	if _, err := tx.Exec(ctx, `DELETE FROM kiosk_faults WHERE kiosk_id = $1 AND component = $2`, hb.KioskID, ComponentOffline); err != nil {
		return fmt.Errorf("kiosk %s: %w", hb.KioskID, err)
	}
	return nil
}
