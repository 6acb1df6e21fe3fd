//go:build integration

package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/tests/testenv"
)

func newEvent(t *testing.T, kiosk string) event.Event {
	t.Helper()
	ev, err := events.New(events.KioskHeartbeat, "/kiosks/"+kiosk, "", events.KioskHeartbeatData{
		KioskID: kiosk, At: time.Now().UTC(), Status: events.KioskStatusOK, Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func enqueue(t *testing.T, pool *pgxpool.Pool, producer string, evs ...event.Event) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		for _, ev := range evs {
			if err := outbox.Enqueue(context.Background(), tx, producer, "", ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRelay_DeliversCommittedEventsOnlyInOrder(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	ctx := context.Background()

	// A rolled-back transaction leaves nothing to deliver.
	_ = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, "p", "", newEvent(t, "rolled-back")); err != nil {
			t.Fatal(err)
		}
		return errors.New("roll back")
	})
	a, b := newEvent(t, "a"), newEvent(t, "b")
	enqueue(t, pool, "p", a, b)
	enqueue(t, pool, "p", a) // the same event again: ignored
	enqueue(t, pool, "other", newEvent(t, "not-mine"))

	var mu sync.Mutex
	var got []string
	r := &outbox.Relay{Pool: pool, Producer: "p", Log: quiet(), Deliver: func(_ context.Context, m outbox.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.Event.ID())
		return nil
	}}
	n, err := r.RunOnce(ctx)
	if err != nil || n != 2 {
		t.Fatalf("want 2 claimed, got %d, %v", n, err)
	}
	if len(got) != 2 || got[0] != a.ID() || got[1] != b.ID() {
		t.Errorf("want [a b] in commit order, got %v", got)
	}
	if n, _ := r.RunOnce(ctx); n != 0 {
		t.Errorf("delivered rows must not be claimed again, got %d", n)
	}
}

func TestRelay_RetriesWithBackoffThenDeadLetters(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	ctx := context.Background()
	enqueue(t, pool, "p", newEvent(t, "flaky"))
	enqueue(t, pool, "q", newEvent(t, "rejected"))

	var calls atomic.Int32
	flaky := &outbox.Relay{Pool: pool, Producer: "p", Log: quiet(), MinBackoff: 100 * time.Millisecond,
		Deliver: func(context.Context, outbox.Message) error {
			if calls.Add(1) < 3 {
				return errors.New("sink unavailable")
			}
			return nil
		}}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		_, _ = flaky.RunOnce(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	var attempts int
	var delivered bool
	_ = pool.QueryRow(ctx, `SELECT attempts, delivered_at IS NOT NULL FROM outbox WHERE producer='p'`).Scan(&attempts, &delivered)
	if calls.Load() != 3 || attempts != 3 || !delivered {
		t.Errorf("want delivered on the 3rd attempt, got calls=%d attempts=%d delivered=%v", calls.Load(), attempts, delivered)
	}

	rejecting := &outbox.Relay{Pool: pool, Producer: "q", Log: quiet(), Deliver: func(context.Context, outbox.Message) error {
		return outbox.Permanent(errors.New("400 invalid"))
	}}
	_, _ = rejecting.RunOnce(ctx)
	var dead bool
	var lastErr string
	_ = pool.QueryRow(ctx, `SELECT dead_at IS NOT NULL, last_error FROM outbox WHERE producer='q'`).Scan(&dead, &lastErr)
	if !dead || lastErr == "" {
		t.Errorf("want a permanent failure dead-lettered with its reason, got dead=%v err=%q", dead, lastErr)
	}
}

// A relay that dies after sending but before recording it delivers again after the lease:
// at least once, which idempotent consumers turn into exactly one effect.
func TestRelay_CrashAfterSendRedeliversAfterLease(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	ctx := context.Background()
	enqueue(t, pool, "p", newEvent(t, "crash"))

	crashCtx, crash := context.WithCancel(ctx)
	var first atomic.Int32
	dying := &outbox.Relay{Pool: pool, Producer: "p", Log: quiet(), Lease: 300 * time.Millisecond,
		Deliver: func(context.Context, outbox.Message) error {
			first.Add(1)
			crash() // the process "dies": settling fails on a cancelled context
			return nil
		}}
	_, _ = dying.RunOnce(crashCtx)

	var second atomic.Int32
	survivor := &outbox.Relay{Pool: pool, Producer: "p", Log: quiet(), Lease: 300 * time.Millisecond,
		Deliver: func(context.Context, outbox.Message) error { second.Add(1); return nil }}
	if n, _ := survivor.RunOnce(ctx); n != 0 {
		t.Fatalf("within the lease the row belongs to the first relay; got %d claimed", n)
	}
	time.Sleep(400 * time.Millisecond)
	if n, _ := survivor.RunOnce(ctx); n != 1 || second.Load() != 1 || first.Load() != 1 {
		t.Errorf("after the lease: want one redelivery, got claimed=%d first=%d second=%d", n, first.Load(), second.Load())
	}
}

// The relay wakes when its process enqueues, well before its poll interval; a row it was
// not told of (written by another process) is found by the poll.
func TestRelay_RunWakesOnCommit(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	got := make(chan string, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Ce-Id")
	}))
	defer sink.Close()
	sender, _ := events.NewSender(sink.URL, nil)
	r := &outbox.Relay{Pool: pool, Producer: "p", Log: quiet(), Poll: time.Minute,
		Deliver: func(ctx context.Context, m outbox.Message) error { return sender.Send(ctx, m.Event) }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	time.Sleep(300 * time.Millisecond) // let it finish its first pass
	ev := newEvent(t, "wake")
	start := time.Now()
	enqueue(t, pool, "p", ev)
	select {
	case id := <-got:
		if id != ev.ID() {
			t.Errorf("want %s, got %s", ev.ID(), id)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("want delivery when nudged, took %s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered before the poll interval: enqueueing did not wake the relay")
	}
	// Another process's row: inserted without Queue, so nobody nudges; a relay polling
	// every 200 ms delivers it.
	cancel()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	polling := *r // a relay of its own: the first may still be returning
	polling.Poll = 200 * time.Millisecond
	go polling.Run(ctx)
	other := newEvent(t, "other")
	body, _ := json.Marshal(other)
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (producer, destination, event_source, event_id, event_type, event)
		VALUES ('p', '', $1, $2, $3, $4)`, other.Source(), other.ID(), other.Type(), body); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		if id != other.ID() {
			t.Errorf("want %s, got %s", other.ID(), id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a row no nudge announced was not found by the poll")
	}
}

// Enqueue (the broker's ingest) takes a redelivered event once; Queue (a producer's new
// event, plain INSERT) refuses the same event twice rather than hide it.
func TestOutbox_EnqueueIsIdempotentQueueIsNot(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	ctx := context.Background()
	ev := newEvent(t, "twice")
	enqueue(t, pool, "p", ev, ev)
	enqueue(t, pool, "p", ev)
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_id = $1`, ev.ID()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Enqueue three times: want 1 row, got %d", n)
	}

	fresh := newEvent(t, "fresh")
	b := &pgx.Batch{}
	for range 2 {
		if err := outbox.Queue(b, "p", "", fresh); err != nil {
			t.Fatal(err)
		}
	}
	if err := pool.SendBatch(ctx, b).Close(); err == nil {
		t.Fatal("Queue of one event twice: want a unique violation, got nil")
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_id = $1`, fresh.ID()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the refused batch left %d rows", n)
	}
}
