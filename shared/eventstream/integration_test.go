//go:build integration

package eventstream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/eventstream"
	"github.com/sscard/platform/shared/inbox"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/tests/testenv"
)

// rig is one producer's outbox relay publishing to JetStream and one connector delivering
// two routes of KioskHeartbeat to subscribers served here, whose effects go through the
// inbox (Postgres), as functions' do.
type rig struct {
	t      *testing.T
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	srv    *httptest.Server
	answer func(consumer string, ev event.Event, call int) int // HTTP status; nil: 200

	mu         sync.Mutex
	deliveries map[string]int         // consumer → HTTP deliveries received
	calls      map[string][]time.Time // consumer/event id → delivery times
}

var subscribers = []string{"sub-a", "sub-b"}

func quiet() *slog.Logger {
	if os.Getenv("EVENTSTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newRig(t *testing.T, urls string, replicas int) *rig {
	t.Helper()
	env := testenv.Load(t)
	r := &rig{t: t, pool: env.Pool(t, env.NewDatabase(t)), deliveries: map[string]int{}, calls: map[string][]time.Time{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)

	cfg := eventstream.Config{URL: urls}
	nc, js, err := eventstream.Connect(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r.js = js
	top := eventstream.DefaultTopology()
	top.Replicas = replicas
	testenv.Eventually(t, 30*time.Second, "streams created", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return eventstream.EnsureStreams(ctx, js, top) == nil
	})

	pub, err := eventstream.NewPublisher(cfg, "test-relay")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	relay := &outbox.Relay{Pool: r.pool, Producer: "producer", Log: quiet(), Poll: 50 * time.Millisecond,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxAttempts: 1000,
		Batch: 256, DeliverAll: eventstream.RelayDelivery(pub)}
	wg.Go(func() { relay.Run(ctx) })

	var routes []events.Route
	for _, s := range subscribers {
		routes = append(routes, events.Route{Type: events.KioskHeartbeat, Consumer: s})
	}
	conn := &eventstream.Connector{JS: js, Routes: routes, Log: quiet(), Target: func(fn string) string { return r.srv.URL + "/" + fn },
		Client: &http.Client{Timeout: 5 * time.Second}, MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxDeliveries: 6}
	wg.Go(func() {
		if err := conn.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("connector: %v", err)
		}
	})
	return r
}

func (r *rig) serve(w http.ResponseWriter, req *http.Request) {
	consumer := strings.TrimPrefix(req.URL.Path, "/")
	body, _ := io.ReadAll(req.Body)
	ev, err := events.FromHTTP(req.Context(), req.Header, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.deliveries[consumer]++
	key := consumer + "/" + ev.ID()
	r.calls[key] = append(r.calls[key], time.Now())
	call := len(r.calls[key])
	answer := r.answer
	r.mu.Unlock()
	if answer != nil {
		if st := answer(consumer, ev, call); st != http.StatusOK {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"status":%d,"title":"refused by the test"}`, st)
			return
		}
	}
	_, err = inbox.Process(req.Context(), r.pool, consumer, ev, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, source, id, type) VALUES ($1, 'effect', $2, $3)`,
			consumer, ev.ID(), ev.Type())
		return err
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
}

func (r *rig) setAnswer(f func(consumer string, ev event.Event, call int) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// enqueue commits n heartbeats in the producer's outbox, in transactions of up to 100.
func (r *rig) enqueue(n int) []event.Event {
	r.t.Helper()
	var out []event.Event
	for len(out) < n {
		err := pgx.BeginFunc(context.Background(), r.pool, func(tx pgx.Tx) error {
			for i := 0; i < 100 && len(out) < n; i++ {
				k := fmt.Sprintf("k%d", len(out))
				ev, err := events.New(events.KioskHeartbeat, "/kiosks/"+k, k, events.KioskHeartbeatData{
					KioskID: k, At: time.Now().UTC().Truncate(time.Millisecond), Status: events.KioskStatusOK, Version: "t"})
				if err != nil {
					return err
				}
				if err := outbox.Enqueue(context.Background(), tx, "producer", "", ev); err != nil {
					return err
				}
				out = append(out, ev)
			}
			return nil
		})
		if err != nil {
			r.t.Fatal(err)
		}
	}
	return out
}

// effects counts the effects each subscriber carried out (one row per event applied).
func (r *rig) effects(consumer string) int {
	var n int
	_ = r.pool.QueryRow(context.Background(), `SELECT count(*) FROM processed_events WHERE consumer = $1 AND source = 'effect'`,
		consumer).Scan(&n)
	return n
}

func (r *rig) waitEffects(n int, limit time.Duration) {
	r.t.Helper()
	for _, s := range subscribers {
		testenv.Eventually(r.t, limit, fmt.Sprintf("%d effects at %s", n, s), func() bool { return r.effects(s) >= n })
	}
}

func (r *rig) streamMsgs(subjectPrefix string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, eventstream.EventsStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subjectPrefix+">"))
	if err != nil {
		r.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// checkExactlyOnce: every event is in the stream once and took effect once per subscriber.
func (r *rig) checkExactlyOnce(n int) {
	r.t.Helper()
	time.Sleep(300 * time.Millisecond) // a late duplicate would land meanwhile
	if got := r.streamMsgs("events."); got != uint64(n) {
		r.t.Errorf("stream: want %d messages (one per event), got %d", n, got)
	}
	for _, s := range subscribers {
		if got := r.effects(s); got != n {
			r.t.Errorf("%s: want %d effects, got %d", s, n, got)
		}
	}
	var undelivered int
	_ = r.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&undelivered)
	if undelivered != 0 {
		r.t.Errorf("outbox: %d rows not marked sent", undelivered)
	}
	r.mu.Lock()
	r.t.Logf("deliveries received: %v for %d events per subscriber", r.deliveries, n)
	r.mu.Unlock()
}

func TestEventStream_OutboxEventReachesEverySubscriberOnce(t *testing.T) {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.URL(), 1)
	r.enqueue(50)
	r.waitEffects(50, 30*time.Second)
	r.checkExactlyOnce(50)
}

func TestEventStream_SubscriberDownIsRetriedWithBackoff(t *testing.T) {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.URL(), 1)
	// sub-a is "down" (503) for its first four deliveries of each event.
	r.setAnswer(func(consumer string, _ event.Event, call int) int {
		if consumer == "sub-a" && call <= 4 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	evs := r.enqueue(1)
	r.waitEffects(1, 30*time.Second)
	r.checkExactlyOnce(1)
	r.mu.Lock()
	times := r.calls["sub-a/"+evs[0].ID()]
	r.mu.Unlock()
	if len(times) != 5 {
		t.Fatalf("sub-a: want 5 deliveries (4 refused, 1 taken), got %d", len(times))
	}
	// Nak delays 200, 400, 800, 1600 ms: each gap at least the backoff, and growing.
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		want := 200 * time.Millisecond << (i - 1)
		if gap < want*9/10 {
			t.Errorf("retry %d came after %s, want ≥ %s", i, gap, want)
		}
	}
}

func TestEventStream_RefusedEventIsDeadLetteredAndReplayed(t *testing.T) {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.URL(), 1)
	var refuse atomic.Bool
	refuse.Store(true)
	r.setAnswer(func(consumer string, _ event.Event, _ int) int {
		if consumer == "sub-a" && refuse.Load() {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	})
	evs := r.enqueue(1)
	ctx := context.Background()
	var dls []eventstream.DeadLetter
	testenv.Eventually(t, 20*time.Second, "a dead letter", func() bool {
		dls, _ = eventstream.ListDeadLetters(ctx, r.js, "", 100)
		return len(dls) == 1
	})
	d := dls[0]
	if d.Consumer != "sub-a" || d.EventID != evs[0].ID() || d.Status != 422 || d.Deliveries != 1 ||
		!strings.Contains(d.Reason, "422") {
		t.Errorf("dead letter: want sub-a, the event, status 422 after 1 delivery with the reason, got %+v", d)
	}
	if r.effects("sub-a") != 0 || r.effects("sub-b") != 1 {
		t.Fatalf("want no effect at sub-a and one at sub-b, got %d and %d", r.effects("sub-a"), r.effects("sub-b"))
	}
	refuse.Store(false)
	if err := eventstream.Replay(ctx, r.js, d.Seq); err != nil {
		t.Fatal(err)
	}
	r.waitEffects(1, 20*time.Second)
	if dls, _ = eventstream.ListDeadLetters(ctx, r.js, "", 100); len(dls) != 0 {
		t.Errorf("after replay: want no dead letters, got %+v", dls)
	}
	time.Sleep(500 * time.Millisecond)
	r.mu.Lock()
	subB := len(r.calls["sub-b/"+evs[0].ID()])
	r.mu.Unlock()
	if subB != 1 {
		t.Errorf("the replay is for sub-a only: sub-b got %d deliveries, want 1", subB)
	}
	if r.effects("sub-a") != 1 {
		t.Errorf("sub-a: want one effect after replay, got %d", r.effects("sub-a"))
	}
	// After MaxDeliveries failures (5xx) an event is dead-lettered too, with the count.
	r.setAnswer(func(consumer string, _ event.Event, _ int) int {
		if consumer == "sub-b" {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	r.enqueue(1)
	testenv.Eventually(t, 30*time.Second, "a dead letter after 6 deliveries", func() bool {
		dls, _ = eventstream.ListDeadLetters(ctx, r.js, "sub-b", 100)
		return len(dls) == 1
	})
	if dls[0].Deliveries != 6 || dls[0].Status != 502 || !strings.Contains(dls[0].Reason, "6 deliveries failed") {
		t.Errorf("want a dead letter after 6 deliveries with status 502, got %+v", dls[0])
	}
}

func TestEventStream_ServerKilledMidBurstLosesNothing(t *testing.T) {
	ns := testenv.StartNATS(t)
	r := newRig(t, ns.URL(), 1)
	const n = 2000
	done := make(chan struct{})
	go func() { r.enqueue(n); close(done) }()
	testenv.Eventually(t, 60*time.Second, "burst under way", func() bool { return r.effects("sub-a") >= 200 })
	ns.Kill()
	time.Sleep(time.Second)
	ns.Start()
	<-done
	r.waitEffects(n, 90*time.Second)
	r.checkExactlyOnce(n)
}

func TestEventStream_ClusterNodeKilledMidBurstLosesNothing(t *testing.T) {
	servers := testenv.StartNATSCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	r := newRig(t, strings.Join(urls, ","), 3)
	ctx := context.Background()
	s, err := r.js.Stream(ctx, eventstream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("want an R3 stream, got %+v %v", info, err)
	}
	const n = 2000
	done := make(chan struct{})
	go func() { r.enqueue(n); close(done) }()
	testenv.Eventually(t, 60*time.Second, "burst under way", func() bool { return r.effects("sub-a") >= 200 })
	// Kill the stream's leader: the hardest case (a new leader is elected mid-burst).
	var victim *testenv.NATSServer
	for _, sv := range servers {
		if sv.Name == info.Cluster.Leader {
			victim = sv
		}
	}
	if victim == nil {
		victim = servers[0]
	}
	t.Logf("killing %s (stream leader %q)", victim.Name, info.Cluster.Leader)
	victim.Kill()
	<-done
	r.waitEffects(n, 120*time.Second)
	r.checkExactlyOnce(n)
}
