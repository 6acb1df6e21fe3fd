// Command events measures event delivery from a function's outbox through NATS JetStream
// and the event connector to a function, against raw JetStream publish + consume on the
// same server in the same run (issue 19: ≥ 0.5× the raw floor, p99 ≤ 50 ms at 1,000
// events/s):
//
//   - raw: publish with a wait for each ack (as a relay must, before marking a row sent)
//     on 8 publishers, consume from a durable pull consumer with explicit acks;
//   - platform: events committed in an outbox (Postgres) → the outbox relay publishes
//     (message id = event id) and marks the row sent → the connector posts each event in
//     binary mode over HTTP to a consumer that applies it through the inbox (one Postgres
//     transaction, as functions do) → ack.
//
// Each is measured flat out (events/s) and paced at -rate (p50/p99 from commit, or
// publish, to the consumer's receipt). nats-server (the pinned module) runs in this
// process with file storage. Run through `make bench-events` (it starts the test services).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/eventstream"
	"github.com/sscard/platform/shared/inbox"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/tests/testenv"
)

var workers int

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func main() {
	n := flag.Int("events", 5000, "events per flat-out run")
	rate := flag.Int("rate", 1000, "events/s of the paced runs")
	d := flag.Duration("duration", 10*time.Second, "length of each paced run")
	flag.IntVar(&workers, "workers", 16, "connector deliveries in flight per route")
	flag.Parse()
	if err := run(*n, *rate, *d); err != nil {
		fmt.Fprintln(os.Stderr, "bench-events:", err)
		os.Exit(1)
	}
}

func run(n, rate int, d time.Duration) error {
	ctx := context.Background()
	env := envconf.New(os.Environ())
	sec := secrets.Reader{Dir: env.String("secret_mount_path", "")}
	pw, err := sec.Read("postgres-password")
	if err != nil {
		return err
	}
	dsn, drop, err := testenv.CreateDatabase(ctx, env.String("postgres_dsn", ""), pw)
	if err != nil {
		return err
	}
	defer drop()
	pc, _ := pgxpool.ParseConfig(dsn)
	pc.ConnConfig.Password = pw
	pc.MaxConns = 24
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return err
	}
	defer pool.Close()

	dir, _ := os.MkdirTemp("", "bench-events-")
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: dir})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats-server did not start")
	}
	defer ns.Shutdown()
	url := ns.ClientURL()

	fmt.Printf("bench-events: nats-server %s embedded (file storage), Postgres test cluster; %d events flat out, paced %d/s for %s\n",
		server.VERSION, n, rate, d)
	raw, err := benchRaw(ctx, url, n, rate, d)
	if err != nil {
		return err
	}
	plat, err := benchPlatform(ctx, url, pool, n, rate, d)
	if err != nil {
		return err
	}
	fmt.Printf("raw JetStream        %8.0f events/s   paced %d/s: p50 %6.2f ms  p99 %6.2f ms  (%d received)\n",
		raw.perSec, rate, ms(raw.p50), ms(raw.p99), raw.count)
	fmt.Printf("outbox→JS→connector  %8.0f events/s   paced %d/s: p50 %6.2f ms  p99 %6.2f ms  (%d received)\n",
		plat.perSec, rate, ms(plat.p50), ms(plat.p99), plat.count)
	fmt.Printf("ratio platform/raw   %8.2f (target ≥ 0.5); platform p99 %.2f ms (target ≤ 50 ms)\n", plat.perSec/raw.perSec, ms(plat.p99))
	return nil
}

type result struct {
	perSec   float64
	p50, p99 time.Duration
	count    int
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// latencies collects receipt − start per key.
type latencies struct {
	mu     sync.Mutex
	start  map[string]time.Time
	got    []time.Duration
	seen   map[string]bool
	notify chan struct{}
	want   int
}

func newLatencies(want int) *latencies {
	return &latencies{start: map[string]time.Time{}, seen: map[string]bool{}, notify: make(chan struct{}), want: want}
}

func (l *latencies) started(key string, at time.Time) {
	l.mu.Lock()
	l.start[key] = at
	l.mu.Unlock()
}

func (l *latencies) received(key string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	if s, ok := l.start[key]; ok {
		l.got = append(l.got, now.Sub(s))
	}
	if len(l.seen) == l.want {
		close(l.notify)
	}
}

func (l *latencies) wait(limit time.Duration) error {
	select {
	case <-l.notify:
		return nil
	case <-time.After(limit):
		l.mu.Lock()
		defer l.mu.Unlock()
		return fmt.Errorf("only %d of %d events arrived within %s", len(l.seen), l.want, limit)
	}
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.got)
	if len(l.got) == 0 {
		return 0, 0
	}
	return l.got[len(l.got)/2], l.got[len(l.got)*99/100]
}

// pace calls fn(i) at rate per second for d, from several goroutines (a slow call does
// not delay the next ones' start).
func pace(rate int, d time.Duration, fn func(i int)) int {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				fn(i)
			}
		})
	}
	start := time.Now()
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return total
}

func benchRaw(ctx context.Context, url string, n, rate int, d time.Duration) (result, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		return result{}, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return result{}, err
	}
	var lat atomic.Pointer[latencies]
	cc, err := cons.Consume(func(m jetstream.Msg) {
		lat.Load().received(m.Headers().Get(jetstream.MsgIDHeader))
		_ = m.Ack()
	})
	if err != nil {
		return result{}, err
	}
	defer cc.Stop()
	publish := func(key string) error {
		msg := nats.NewMsg("raw.x")
		msg.Header.Set(jetstream.MsgIDHeader, key)
		msg.Data = make([]byte, 400) // about the size of a structured heartbeat event
		_, err := js.PublishMsg(ctx, msg)
		return err
	}
	// Flat out: 8 publishers, each waiting for its acks.
	l := newLatencies(n)
	lat.Store(l)
	start := time.Now()
	var wg sync.WaitGroup
	var perr atomic.Value
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := publish("f" + strconv.Itoa(i)); err != nil {
					perr.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err := l.wait(60 * time.Second); err != nil {
		return result{}, err
	}
	perSec := float64(n) / time.Since(start).Seconds()
	if e := perr.Load(); e != nil {
		return result{}, e.(error)
	}
	// Paced.
	total := int(float64(rate) * d.Seconds())
	l = newLatencies(total)
	lat.Store(l)
	pace(rate, d, func(i int) {
		key := "p" + strconv.Itoa(i)
		l.started(key, time.Now())
		_ = publish(key)
	})
	if err := l.wait(60 * time.Second); err != nil {
		return result{}, err
	}
	p50, p99 := l.percentiles()
	return result{perSec: perSec, p50: p50, p99: p99, count: total}, nil
}

func benchPlatform(ctx context.Context, url string, pool *pgxpool.Pool, n, rate int, d time.Duration) (result, error) {
	cfg := eventstream.Config{URL: url}
	nc, js, err := eventstream.Connect(cfg, "bench")
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	if err := eventstream.EnsureStreams(ctx, js, eventstream.DefaultTopology()); err != nil {
		return result{}, err
	}
	var lat atomic.Pointer[latencies]
	// The consuming function: parse the CloudEvent, apply it once through the inbox.
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := events.FromHTTP(r.Context(), r.Header, body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if os.Getenv("BENCH_NO_INBOX") != "" {
			lat.Load().received(ev.ID())
			return
		}
		if _, err := inbox.Process(r.Context(), pool, "kiosk", ev, func(context.Context, pgx.Tx) error { return nil }); err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		lat.Load().received(ev.ID())
	}))
	defer fn.Close()

	pub, err := eventstream.NewPublisher(cfg, "bench-relay")
	if err != nil {
		return result{}, err
	}
	defer pub.Close()
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	conn := &eventstream.Connector{JS: js, Routes: []events.Route{{Type: events.KioskHeartbeat, Consumer: "kiosk"}}, Log: quiet, Workers: workers,
		Target: func(string) string { return fn.URL }}
	wg.Go(func() { _ = conn.Run(rctx) })

	newEvent := func(i int) event.Event {
		k := "k" + strconv.Itoa(i)
		ev, _ := events.New(events.KioskHeartbeat, "/kiosks/"+k, k, events.KioskHeartbeatData{
			KioskID: k, At: time.Now().UTC().Truncate(time.Millisecond), Status: events.KioskStatusOK, Version: "bench"})
		return ev
	}
	// Flat out: n events committed first (100 per transaction by 4 writers), then the
	// relay starts and the clock with it: the transport's rate, not Postgres's insert rate.
	l := newLatencies(n)
	lat.Store(l)
	start := time.Now()
	var perr atomic.Value
	var ww sync.WaitGroup
	for w := range 4 {
		ww.Go(func() {
			for base := w * 100; base < n; base += 400 {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					for i := base; i < min(base+100, n); i++ {
						if err := outbox.Enqueue(ctx, tx, "bench", "", newEvent(i)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					perr.Store(err)
				}
			}
		})
	}
	ww.Wait()
	if e := perr.Load(); e != nil {
		return result{}, e.(error)
	}
	committed := time.Since(start)
	relay := &outbox.Relay{Pool: pool, Producer: "bench", Log: quiet,
		Batch: 256, DeliverAll: eventstream.RelayDelivery(pub)}
	start = time.Now()
	wg.Go(func() { relay.Run(rctx) })
	for {
		var left int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE delivered_at IS NULL`).Scan(&left)
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	published := time.Since(start)
	if err := l.wait(120 * time.Second); err != nil {
		return result{}, err
	}
	perSec := float64(n) / time.Since(start).Seconds()
	fmt.Printf("  platform flat out: %d events committed in %s; then relayed: all published (rows marked sent) after %s, all applied after %s\n", n,
		committed.Round(time.Millisecond), published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	// Paced: one event per transaction, as a function commits a change and its event.
	total := int(float64(rate) * d.Seconds())
	l = newLatencies(total)
	lat.Store(l)
	pace(rate, d, func(i int) {
		ev := newEvent(n + i)
		_ = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := outbox.Enqueue(ctx, tx, "bench", "", ev); err != nil {
				return err
			}
			l.started(ev.ID(), time.Now()) // just before the commit
			return nil
		})
	})
	if err := l.wait(120 * time.Second); err != nil {
		return result{}, err
	}
	p50, p99 := l.percentiles()
	// The relay's share: transaction start (created_at) to the row marked sent.
	var r50, r99 float64
	_ = pool.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at))
		FROM outbox WHERE id > (SELECT max(id) - $1 FROM outbox)`, total).Scan(&r50, &r99)
	fmt.Printf("  platform paced: transaction start → outbox row marked sent p50 %.2f ms p99 %.2f ms\n", r50*1000, r99*1000)
	return result{perSec: perSec, p50: p50, p99: p99, count: total}, nil
}
