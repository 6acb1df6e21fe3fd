package eventstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
)

// Connector delivers the events stream to functions: one durable pull consumer per route
// of the events catalog, each event posted in binary mode to Target(consumer). Several
// connector replicas may run: they share each durable consumer, so every event of a route
// is delivered by one of them at a time.
//
// Outcomes: 2xx → ack. 5xx, 408, 429, a timeout or a refused connection → nak with
// exponential backoff (the function is down or busy; it gets the event when it is back).
// Another 4xx (the function will never take this event), an unreadable message, or
// MaxDeliveries failed attempts → the event goes to the dead-letter stream with the reason
// and is terminated. Delivery is at least once: functions dedupe by event (shared/inbox).
type Connector struct {
	JS     jetstream.JetStream
	Routes []events.Route
	// Target is the URL events of function are posted to, e.g. the OpenFaaS gateway's
	// http://gateway.openfaas:8080/function/<name>.
	Target func(function string) string
	Client *http.Client // [30 s timeout]
	Log    *slog.Logger

	MaxDeliveries int           // attempts before dead-lettering [10]
	MinBackoff    time.Duration // delay after the first failure, doubled each time [1s]
	MaxBackoff    time.Duration // cap [2m]
	Workers       int           // deliveries in flight per route [16]
	AckWait       time.Duration // redelivery when a connector dies mid-delivery [Client timeout + 15s]
}

func (c *Connector) defaults() {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Client == nil {
		// Keep a connection per worker and route alive (the default keeps 2 per host,
		// and every other delivery would open a connection).
		c.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 4 * c.Workers, IdleConnTimeout: 90 * time.Second}}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 10
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 2 * time.Minute
	}
	if c.AckWait <= 0 {
		c.AckWait = c.Client.Timeout + 15*time.Second
		if c.Client.Timeout == 0 {
			c.AckWait = time.Minute
		}
	}
}

// ConsumerConfig is the durable consumer of route r.
func (c *Connector) ConsumerConfig(r events.Route) jetstream.ConsumerConfig {
	c.defaults()
	return jetstream.ConsumerConfig{
		Durable:        DurableName(r),
		Description:    string(r.Type) + " → " + r.Consumer,
		FilterSubjects: []string{Subject(string(r.Type)), replaySubject(r.Consumer, string(r.Type))},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		// Attempts are counted here (dead-lettered with a reason), not by the server,
		// which would stop delivering silently.
		MaxDeliver:    -1,
		MaxAckPending: 4 * c.Workers,
	}
}

// Run creates the route consumers (retrying while NATS is unreachable) and delivers until
// ctx ends; deliveries in flight finish first.
func (c *Connector) Run(ctx context.Context) error {
	c.defaults()
	var wg sync.WaitGroup
	var consuming []jetstream.ConsumeContext
	defer func() {
		for _, cc := range consuming {
			cc.Stop()
		}
		wg.Wait()
	}()
	for _, r := range c.Routes {
		cons, err := c.consumer(ctx, r)
		if err != nil {
			return err
		}
		d := &routeDelivery{c: c, route: r, sem: make(chan struct{}, c.Workers), wg: &wg}
		if d.sender, err = events.NewSender(c.Target(r.Consumer), c.Client); err != nil {
			return err
		}
		cc, err := cons.Consume(d.handle, jetstream.PullMaxMessages(2*c.Workers),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if ctx.Err() == nil && !errors.Is(err, nats.ErrConnectionClosed) {
					c.Log.Debug("consume", "route", DurableName(r), "error", err.Error())
				}
			}))
		if err != nil {
			return fmt.Errorf("eventstream: consume %s: %w", DurableName(r), err)
		}
		consuming = append(consuming, cc)
	}
	c.Log.Info("event connector running", "routes", len(c.Routes))
	<-ctx.Done()
	return nil
}

func (c *Connector) consumer(ctx context.Context, r events.Route) (jetstream.Consumer, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := c.JS.CreateOrUpdateConsumer(cctx, EventsStream, c.ConsumerConfig(r))
		cancel()
		if err == nil {
			return cons, nil
		}
		c.Log.Warn("cannot create route consumer yet", "route", DurableName(r), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

type routeDelivery struct {
	c      *Connector
	route  events.Route
	sender *events.Sender
	sem    chan struct{}
	wg     *sync.WaitGroup
}

// handle is called in order by the consumer; deliveries run concurrently up to Workers.
func (d *routeDelivery) handle(msg jetstream.Msg) {
	d.sem <- struct{}{}
	d.wg.Add(1)
	go func() {
		defer func() { <-d.sem; d.wg.Done() }()
		d.deliver(msg)
	}()
}

func (d *routeDelivery) deliver(msg jetstream.Msg) {
	c := d.c
	md, err := msg.Metadata()
	if err != nil {
		return // not a JetStream message; cannot be acked either
	}
	ev, err := decode(msg.Data())
	if err != nil {
		d.deadLetter(msg, md, err.Error(), 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Client.Timeout+time.Second)
	err = d.sender.Send(ctx, ev)
	cancel()
	if err == nil {
		_ = msg.Ack()
		return
	}
	status := 0
	var se *events.SendError
	if errors.As(err, &se) {
		status = se.StatusCode
	}
	if permanent(err, status) {
		d.deadLetter(msg, md, err.Error(), status)
		return
	}
	n := int(md.NumDelivered)
	if n >= c.MaxDeliveries {
		d.deadLetter(msg, md, fmt.Sprintf("%d deliveries failed, last: %s", n, err.Error()), status)
		return
	}
	delay := backoff(c.MinBackoff, c.MaxBackoff, n)
	c.Log.Info("event delivery failed, will retry", "route", DurableName(d.route), "event_id", ev.ID(),
		"delivery", n, "status", status, "retry_in_ms", delay.Milliseconds(), "error", err.Error())
	_ = msg.NakWithDelay(delay)
}

// permanent: the function answered that it will never take this event.
func permanent(err error, status int) bool {
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		return true
	}
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func backoff(minD, maxD time.Duration, delivery int) time.Duration {
	d := minD
	for i := 1; i < delivery && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// Dead-letter headers.
const (
	hdrReason     = "Sscard-Reason"
	hdrStatus     = "Sscard-Status"
	hdrConsumer   = "Sscard-Consumer"
	hdrEventType  = "Sscard-Event-Type"
	hdrDeliveries = "Sscard-Deliveries"
	hdrDeadAt     = "Sscard-Dead-At"
)

func (d *routeDelivery) deadLetter(msg jetstream.Msg, md *jetstream.MsgMetadata, reason string, status int) {
	c := d.c
	dl := nats.NewMsg(deadLetterSubject(d.route.Consumer))
	dl.Data = msg.Data()
	dl.Header.Set("Content-Type", contentType)
	dl.Header.Set(hdrReason, truncate(reason, 1000))
	dl.Header.Set(hdrStatus, strconv.Itoa(status))
	dl.Header.Set(hdrConsumer, d.route.Consumer)
	dl.Header.Set(hdrEventType, string(d.route.Type))
	dl.Header.Set(hdrDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	dl.Header.Set(hdrDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	// One dead letter per stream message and route, even if this connector dies between
	// the publish and the term and the message comes again.
	dl.Header.Set(jetstream.MsgIDHeader, "dl-"+DurableName(d.route)+"-"+strconv.FormatUint(md.Sequence.Stream, 10))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.JS.PublishMsg(ctx, dl); err != nil {
		c.Log.Warn("dead-letter publish failed; will retry", "route", DurableName(d.route), "error", err.Error())
		_ = msg.NakWithDelay(c.MinBackoff)
		return
	}
	c.Log.Error("event dead-lettered", "route", DurableName(d.route), "stream_seq", md.Sequence.Stream,
		"deliveries", md.NumDelivered, "status", status, "reason", truncate(reason, 300))
	_ = msg.TermWithReason(truncate(reason, 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
