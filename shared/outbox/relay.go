package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/wake"
)

// Message is one claimed delivery.
type Message struct {
	ID          int64
	Destination string
	Event       event.Event
	Attempt     int
}

// Relay delivers a producer's committed events. Several replicas may run one each: rows
// are claimed with a lease under SKIP LOCKED, so each delivery attempt has one owner, and
// a replica that dies mid-delivery loses only its lease (the row is retried after it).
type Relay struct {
	Pool     *pgxpool.Pool
	Producer string
	// Deliver sends one message; nil means acknowledged. Wrap with Permanent to dead-letter.
	Deliver func(ctx context.Context, m Message) error
	// DeliverAll, when set, sends a claimed batch at once, in order (a sink that pipelines,
	// like a JetStream publisher waiting for all acks together), and returns one error per
	// message; it replaces Deliver.
	DeliverAll func(ctx context.Context, ms []Message) []error
	Log        *slog.Logger

	Poll        time.Duration // poll for rows no nudge announced (another process's) [1s]
	Batch       int           // rows claimed at once [32]
	Lease       time.Duration // how long a claim is exclusive [30s]
	MaxAttempts int           // attempts before dead-lettering [30]
	MinBackoff  time.Duration // first retry delay, doubled each attempt [500ms]
	MaxBackoff  time.Duration // cap of the retry delay [2m]
}

func (r *Relay) defaults() {
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Batch <= 0 {
		r.Batch = 32
	}
	if r.Lease <= 0 {
		r.Lease = 30 * time.Second
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 30
	}
	if r.MinBackoff <= 0 {
		r.MinBackoff = 500 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 2 * time.Minute
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
}

// Run delivers until ctx ends. Database outages are logged and retried; they never stop it.
//
// Rows this process enqueues nudge it (Queue): it looks Settle later, when their
// transactions have mostly committed, and once more a little later for a slow one. Rows
// of other processes (an instance that crashed before relaying) are found by Poll.
// (Postgres NOTIFY would wake relays everywhere, but a notifying commit holds a lock
// that serialises every such commit, WAL flush included: at a few thousand changes a
// second that queue was a good part of each change's latency.)
func (r *Relay) Run(ctx context.Context) {
	r.defaults()
	n := nudgerOf(r.Producer)
	retry := false
	for {
		claimed, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("outbox relay pass failed", "producer", r.Producer, "error", err.Error())
		}
		if claimed == r.Batch {
			continue // more may be waiting
		}
		wait := r.Poll
		if retry && claimed == 0 {
			// A nudged pass found nothing: its transaction may still be committing.
			wait, retry = settleAgain, false
		}
		select {
		case <-ctx.Done():
			return
		case <-n.C():
			retry = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(Settle):
			}
		case <-time.After(wait):
		}
	}
}

// Settle is how long a nudged relay waits before it looks (the enqueueing transaction
// commits meanwhile, and the rows of others committing with it are claimed together);
// settleAgain is its second look when the first found nothing.
const (
	Settle      = 5 * time.Millisecond
	settleAgain = 100 * time.Millisecond
)

// nudgers tell the relay of each producer in this process that rows were enqueued.
var nudgers sync.Map // producer → *wake.Signal

func nudgerOf(producer string) *wake.Signal {
	n, _ := nudgers.LoadOrStore(producer, &wake.Signal{})
	return n.(*wake.Signal)
}

// nudge wakes producer's relay in this process, if one runs; never blocks.
func nudge(producer string) {
	if n, ok := nudgers.Load(producer); ok {
		n.(*wake.Signal).Notify()
	}
}

// RunOnce claims and delivers one batch; it returns how many rows it claimed.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	r.defaults()
	rows, err := r.Pool.Query(ctx, `UPDATE outbox SET locked_until = now() + $3 * interval '1 millisecond', attempts = attempts + 1
		WHERE id IN (
			SELECT id FROM outbox
			WHERE producer = $1 AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
			  AND (locked_until IS NULL OR locked_until <= now())
			ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
		RETURNING id, destination, event, attempts`, r.Producer, r.Batch, r.Lease.Milliseconds())
	if err != nil {
		return 0, err
	}
	var batch []Message
	for rows.Next() {
		var m Message
		var raw []byte
		if err := rows.Scan(&m.ID, &m.Destination, &raw, &m.Attempt); err != nil {
			rows.Close()
			return 0, err
		}
		if err := json.Unmarshal(raw, &m.Event); err != nil {
			// Cannot happen for rows written by Enqueue; dead-letter rather than loop.
			m.Event = event.New()
			m.Attempt = -1
		}
		batch = append(batch, m)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	// Oldest first, one at a time: a subscriber sees a producer's events in commit order
	// unless one of them has to be retried. The delivered rows are marked in one statement
	// at the end (a commit per row cost a WAL flush per event: 20 ms each on a busy disk);
	// a crash before it redelivers the batch, which sinks and consumers dedupe.
	var delivered []int64
	var readable []Message
	for _, m := range batch {
		if m.Attempt < 0 {
			r.settle(ctx, m, Permanent(errors.New("stored event is not readable")))
			continue
		}
		readable = append(readable, m)
	}
	dctx, cancel := context.WithTimeout(ctx, r.Lease/2)
	errs := r.deliver(dctx, readable)
	cancel()
	for i, m := range readable {
		if errs[i] == nil {
			delivered = append(delivered, m.ID)
			continue
		}
		r.settle(ctx, m, errs[i])
	}
	if len(delivered) > 0 {
		if _, err := r.Pool.Exec(ctx, `UPDATE outbox SET delivered_at = now(), locked_until = NULL, last_error = NULL
			WHERE id = ANY($1)`, delivered); err != nil {
			// The leases expire and the rows are sent again: at least once, never lost.
			r.Log.Warn("outbox settle failed", "producer", r.Producer, "rows", len(delivered), "error", err.Error())
		}
	}
	return len(batch), nil
}

func (r *Relay) deliver(ctx context.Context, ms []Message) []error {
	if r.DeliverAll != nil {
		if len(ms) == 0 {
			return nil
		}
		return r.DeliverAll(ctx, ms)
	}
	errs := make([]error, len(ms))
	for i, m := range ms {
		errs[i] = r.Deliver(ctx, m)
	}
	return errs
}

// settle records a failed delivery: retried after a backoff, or dead-lettered.
func (r *Relay) settle(ctx context.Context, m Message, derr error) {
	dead := IsPermanent(derr) || m.Attempt >= r.MaxAttempts
	_, err := r.Pool.Exec(ctx, `UPDATE outbox SET locked_until = NULL, last_error = $2,
		next_attempt_at = now() + $3 * interval '1 millisecond',
		dead_at = CASE WHEN $4 THEN now() END WHERE id = $1`,
		m.ID, truncate(derr.Error(), 500), r.backoff(m.Attempt).Milliseconds(), dead)
	level := slog.LevelInfo
	if dead {
		level = slog.LevelError
	}
	r.Log.Log(ctx, level, "event delivery failed", "producer", r.Producer, "destination", m.Destination,
		"event_type", m.Event.Type(), "event_id", m.Event.ID(), "attempt", m.Attempt, "dead", dead, "error", derr.Error())
	if err != nil {
		// The lease expires and the row is retried: at least once, never lost.
		r.Log.Warn("outbox settle failed", "producer", r.Producer, "id", m.ID, "error", err.Error())
	}
}

func (r *Relay) backoff(attempt int) time.Duration {
	d := r.MinBackoff
	for i := 1; i < attempt && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
