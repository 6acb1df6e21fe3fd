// Package outbox delivers CloudEvents reliably: a state change and the event announcing it
// commit in one Postgres transaction (Enqueue), and a relay delivers committed events at
// least once (Relay) to the event sink: NATS JetStream (shared/eventstream) or an HTTP
// endpoint such as the Knative Broker. A destination other than "" names one recipient.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
)

// Enqueue records ev for delivery by producer's relay to destination ("" = the event sink).
// Call it inside the transaction that makes the change the event announces. Enqueueing
// the same (source, id) twice for one destination is a no-op.
func Enqueue(ctx context.Context, tx pgx.Tx, producer, destination string, ev event.Event) error {
	b := &pgx.Batch{}
	if err := queue(b, insertOnceSQL, producer, destination, ev); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	return nil
}

// Queue adds to b the row of an event the caller has just made (events.New: a fresh id),
// for a caller that sends its transaction's writes in one round trip; b must be sent
// inside that transaction. A fresh id cannot meet an earlier row, so the insert has no
// conflict arbiter (which would cost Postgres a speculative insertion per event); the same
// event queued twice fails the batch on the unique key.
func Queue(b *pgx.Batch, producer, destination string, ev event.Event) error {
	return queue(b, insertSQL, producer, destination, ev)
}

const (
	insertSQL = `INSERT INTO outbox (producer, destination, event_source, event_id, event_type, event)
		VALUES ($1, $2, $3, $4, $5, $6)`
	insertOnceSQL = insertSQL + ` ON CONFLICT (producer, destination, event_source, event_id) DO NOTHING`
)

func queue(b *pgx.Batch, insert, producer, destination string, ev event.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("outbox: encode event: %w", err)
	}
	b.Queue(insert, producer, destination, ev.Source(), ev.ID(), ev.Type(), body)
	nudge(producer)
	return nil
}

// PermanentError marks a delivery failure that retrying cannot fix (e.g. the subscriber
// rejected the event as invalid); the message is dead-lettered at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
