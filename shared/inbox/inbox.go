// Package inbox makes event consumers idempotent: the effect of an event and the record
// that it was processed commit in one transaction, keyed on (consumer, source, id) — the
// CloudEvents identity — so a redelivery (at-least-once brokers, retries, a relay that
// crashed after sending) changes nothing.
package inbox

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Outcome says what Process did with an event.
type Outcome string

const (
	Processed Outcome = "processed"
	Duplicate Outcome = "duplicate"
)

// Process runs effect at most once for ev on behalf of consumer. Concurrent deliveries of
// the same event serialise on the primary key: the second waits for the first to commit
// and then sees a duplicate; if the first rolls back, the second carries the effect out.
func Process(ctx context.Context, pool *pgxpool.Pool, consumer string, ev event.Event,
	effect func(ctx context.Context, tx pgx.Tx) error) (Outcome, error) {
	var outcome Outcome
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, source, id, type)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, consumer, ev.Source(), ev.ID(), ev.Type())
		if err != nil {
			return fmt.Errorf("record processed event: %w", err)
		}
		if tag.RowsAffected() == 0 {
			outcome = Duplicate
			return nil
		}
		outcome = Processed
		return effect(ctx, tx)
	})
	if err != nil {
		return "", err
	}
	return outcome, nil
}
