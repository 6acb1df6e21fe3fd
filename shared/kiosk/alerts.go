package kiosk

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/outbox"
)

// Fault alerts go to the maintainers' group, which sms-alert expands into numbers.
const (
	AlertRecipient = "group:kiosk-maintainers"
	AlertTemplate  = "kiosk_fault"
	// ComponentOffline is the component an offline alert names: the kiosk went silent.
	ComponentOffline = "offline"
)

// alert is one fault episode to announce.
type alert struct {
	component string
	episode   string // the SMS MessageID: the same episode always gives the same id
	at        time.Time
}

// episodeID names a fault episode from what starts it, so a replay names the same one.
func episodeID(parts ...string) string {
	sum := gm.SM3(gm.LengthPrefixed(append([]string{"kiosk-fault/v1"}, parts...)...))
	return "kiosk-fault-" + hex.EncodeToString(sum[:16])
}

// faultEpisode: component of kiosk turned faulty in heartbeat hb.
func faultEpisode(kiosk, component string, hb uuid.UUID) string {
	return episodeID(kiosk, component, hb.String())
}

// offlineEpisode: kiosk fell silent after the heartbeat of lastSeen.
func offlineEpisode(kiosk string, lastSeen time.Time) string {
	return episodeID(kiosk, ComponentOffline, strconv.FormatInt(lastSeen.UnixMicro(), 10))
}

// raise announces a fault episode through the outbox, once: with open, the episode's row
// is opened first and nothing is sent when one is open already for that component. The
// event id derives from the episode, so the outbox drops a second enqueue too.
func (s *Service) raise(ctx context.Context, tx pgx.Tx, kiosk string, a alert, open bool) error {
	if open {
		tag, err := tx.Exec(ctx, `INSERT INTO kiosk_faults (kiosk_id, component, episode, opened_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, kiosk, a.component, a.episode, a.at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
	}
	ev, err := events.New(events.SMSRequested, s.source(), kiosk, events.SMSRequestedData{
		MessageID: a.episode, Template: AlertTemplate, RecipientRef: AlertRecipient, Purpose: events.PurposeAlert,
		Params: map[string]string{"kioskId": kiosk, "component": a.component},
	})
	if err != nil {
		return err
	}
	ev.SetID(uuid.NewSHA1(uuid.NameSpaceOID, []byte(a.episode)).String())
	return outbox.Enqueue(ctx, tx, Producer, "", ev)
}

// SweepOffline raises an offline alert for every registered kiosk silent for longer than
// the configured silence, once per episode (the episode ends with its next heartbeat). It
// skips kiosks whose batch is being recorded right now. It returns how many it raised.
func (s *Service) SweepOffline(ctx context.Context) (int, error) {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rows, err := tx.Query(ctx, `SELECT k.kiosk_id, k.last_seen_at FROM kiosks k
		WHERE k.registered AND k.last_seen_at < $1
			AND NOT EXISTS (SELECT 1 FROM kiosk_faults f WHERE f.kiosk_id = k.kiosk_id AND f.component = $2)
		ORDER BY k.kiosk_id LIMIT 1000 FOR UPDATE OF k SKIP LOCKED`, s.now().Add(-s.offlineAfter()), ComponentOffline)
	if err != nil {
		return 0, err
	}
	type silent struct {
		id   string
		seen time.Time
	}
	var found []silent
	for rows.Next() {
		var k silent
		if err := rows.Scan(&k.id, &k.seen); err != nil {
			rows.Close()
			return 0, err
		}
		found = append(found, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, k := range found {
		if err := s.raise(ctx, tx, k.id, alert{component: ComponentOffline, episode: offlineEpisode(k.id, k.seen), at: s.now()}, true); err != nil {
			return 0, err
		}
	}
	return len(found), tx.Commit(ctx)
}
