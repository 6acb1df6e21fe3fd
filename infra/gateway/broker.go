package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

// brokerProducer is the outbox producer name of the broker's fan-out rows.
const brokerProducer = "broker"

// broker plays the Knative Broker + Triggers locally. Ingest validates an event and, in
// one transaction, queues one delivery per subscriber from the routing table; the relay
// then delivers each in binary mode with exponential backoff and dead-letters what a
// subscriber rejects or what keeps failing. Queued deliveries survive a gateway restart.
type broker struct {
	pool  *pgxpool.Pool
	sup   *supervisor
	log   *slog.Logger
	relay *outbox.Relay

	mu      sync.Mutex
	senders map[string]*events.Sender
}

func newBroker(pool *pgxpool.Pool, sup *supervisor, self string, log *slog.Logger, o Options) *broker {
	b := &broker{pool: pool, sup: sup, log: log.With("component", "broker"), senders: map[string]*events.Sender{}}
	b.relay = &outbox.Relay{Pool: pool, Producer: brokerProducer, Deliver: b.deliver, Log: b.log,
		Poll: o.BrokerPoll, MinBackoff: o.BrokerMinTry, MaxBackoff: 30 * time.Second, MaxAttempts: 20}
	return b
}

func (b *broker) run(ctx context.Context) { b.relay.Run(ctx) }

func (b *broker) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeProblem(w, problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "Event too large", "events are limited to 1 MiB"))
		return
	}
	ev, err := events.FromHTTP(r.Context(), r.Header, body)
	if err != nil {
		writeProblem(w, runtime.EventProblem(err))
		return
	}
	var subs []string
	for _, s := range events.Subscribers(events.Type(ev.Type())) {
		if _, ok := b.sup.get(s); ok {
			subs = append(subs, s)
		}
	}
	if len(subs) > 0 {
		err = pgx.BeginFunc(r.Context(), b.pool, func(tx pgx.Tx) error {
			for _, s := range subs {
				if err := outbox.Enqueue(r.Context(), tx, brokerProducer, s, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.log.Warn("ingest failed", "event_type", ev.Type(), "error", err.Error())
			pr := problem.Unavailable("postgres", 2*time.Second, err)
			writeProblem(w, pr)
			return
		}
	}
	w.Header().Set("X-Event-Subscribers", strconv.Itoa(len(subs)))
	w.WriteHeader(http.StatusAccepted)
}

func (b *broker) deliver(ctx context.Context, m outbox.Message) error {
	p, ok := b.sup.get(m.Destination)
	if !ok {
		return outbox.Permanent(errors.New("no subscriber function " + m.Destination))
	}
	if p.replicas() == 0 {
		return errors.New(m.Destination + " has no running replica")
	}
	s, err := b.sender(p)
	if err != nil {
		return err
	}
	err = s.Send(ctx, m.Event)
	var se *events.SendError
	if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 &&
		se.StatusCode != http.StatusRequestTimeout && se.StatusCode != http.StatusTooManyRequests {
		return outbox.Permanent(err)
	}
	return err
}

func (b *broker) sender(p *process) (*events.Sender, error) {
	// Keyed by address, not name: a restarted process may listen on another port.
	u := p.url() + "/"
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.senders[u]; ok {
		return s, nil
	}
	s, err := events.NewSender(u, nil)
	if err != nil {
		return nil, err
	}
	b.senders[u] = s
	return s, nil
}

// DeadLetter is one delivery the broker gave up on.
type DeadLetter struct {
	ID          int64     `json:"id"`
	Subscriber  string    `json:"subscriber"`
	EventType   string    `json:"eventType"`
	EventSource string    `json:"eventSource"`
	EventID     string    `json:"eventId"`
	Attempts    int       `json:"attempts"`
	DeadAt      time.Time `json:"deadAt"`
	LastError   string    `json:"lastError"`
}

func (b *broker) deadLetters(w http.ResponseWriter, r *http.Request) {
	rows, err := b.pool.Query(r.Context(), `SELECT id, destination, event_type, event_source, event_id, attempts, dead_at, coalesce(last_error, '')
		FROM outbox WHERE producer = $1 AND dead_at IS NOT NULL ORDER BY id DESC LIMIT 200`, brokerProducer)
	if err != nil {
		writeProblem(w, problem.Unavailable("postgres", 2*time.Second, err))
		return
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		err := row.Scan(&d.ID, &d.Subscriber, &d.EventType, &d.EventSource, &d.EventID, &d.Attempts, &d.DeadAt, &d.LastError)
		return d, err
	})
	if err != nil {
		writeProblem(w, problem.Unavailable("postgres", 2*time.Second, err))
		return
	}
	if out == nil {
		out = []DeadLetter{}
	}
	writeJSON(w, http.StatusOK, out)
}
