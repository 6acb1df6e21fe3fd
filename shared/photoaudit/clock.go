package photoaudit

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
)

// ErrBadEvent: an event that can never apply (its data does not decode or validate).
var ErrBadEvent = errors.New("photo-audit clock: event cannot be applied")

// A newer submission restarts the clock (a re-taken photo after a rejection); an older
// one arriving late changes nothing. An audit that arrived first (brokers do not keep
// order) and is not older than this submission already stopped it.
const startSQL = `INSERT INTO photo_audit_clock (application_id, provider, channel, submitted_at)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (application_id) DO UPDATE SET provider = excluded.provider, channel = excluded.channel,
		submitted_at = excluded.submitted_at,
		audited_at = CASE WHEN photo_audit_clock.audited_at >= excluded.submitted_at THEN photo_audit_clock.audited_at END,
		result = CASE WHEN photo_audit_clock.audited_at >= excluded.submitted_at THEN photo_audit_clock.result END,
		updated_at = now()
	WHERE photo_audit_clock.submitted_at IS NULL OR photo_audit_clock.submitted_at < excluded.submitted_at`

// An audit stops the clock of the photo it audited: not one submitted after it (that is
// a new photo awaiting its own audit), and not before a newer audit.
const stopSQL = `INSERT INTO photo_audit_clock (application_id, audited_at, result) VALUES ($1, $2, $3)
	ON CONFLICT (application_id) DO UPDATE SET audited_at = excluded.audited_at, result = excluded.result, updated_at = now()
	WHERE (photo_audit_clock.submitted_at IS NULL OR photo_audit_clock.submitted_at <= excluded.audited_at)
		AND (photo_audit_clock.audited_at IS NULL OR photo_audit_clock.audited_at < excluded.audited_at)`

// OnPhotoSubmitted starts the audit clock (runtime.EventFunc; idempotent through the inbox).
func (s *Service) OnPhotoSubmitted(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	d, err := events.Decode[events.PhotoSubmittedData](ev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	_, err = tx.Exec(ctx, startSQL, d.ApplicationID, s.Config.ProviderFor(d.Channel), string(d.Channel), d.SubmittedAt)
	return err
}

// OnPhotoAudited stops it.
func (s *Service) OnPhotoAudited(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	d, err := events.Decode[events.PhotoAuditedData](ev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	_, err = tx.Exec(ctx, stopSQL, d.ApplicationID, d.AuditedAt, string(d.Result))
	return err
}
