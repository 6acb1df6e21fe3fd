package eventstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
)

// contentType of a message body: the CloudEvent in structured JSON mode (the NATS
// protocol binding's structured mode), so every attribute survives the stream unchanged.
const contentType = "application/cloudevents+json"

// Publisher publishes events to the events stream; it is the outbox relay's sink when the
// event sink is a nats:// URL.
type Publisher struct {
	nc *nats.Conn
	js jetstream.JetStream
	// Timeout bounds one publish, ack included [5s]: a server that is down makes the relay
	// retry the row later instead of holding it.
	Timeout time.Duration
}

// NewPublisher connects to c.URL (without waiting for the server to be up).
func NewPublisher(c Config, name string) (*Publisher, error) {
	nc, js, err := Connect(c, name)
	if err != nil {
		return nil, err
	}
	return &Publisher{nc: nc, js: js, Timeout: 5 * time.Second}, nil
}

// Send publishes ev and returns once the stream has stored it (the publish ack). The
// event id is the message id: a second publish of the same event within the stream's
// duplicate window — a relay that crashed after the ack but before marking its row sent —
// is dropped by the server.
func (p *Publisher) Send(ctx context.Context, ev event.Event) error {
	if err := events.Validate(ev); err != nil {
		return err
	}
	if !p.nc.IsConnected() {
		// Fail now; the relay retries the row after its backoff. (A publish buffered
		// while reconnecting would hold the relay for the whole timeout.)
		return ErrNotConnected
	}
	msg, err := encode(Subject(ev.Type()), ev)
	if err != nil {
		return err
	}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID())
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("eventstream: publish %s: %w", ev.Type(), err)
	}
	return nil
}

// SendAll publishes evs in order without waiting for each ack in turn, then waits for
// all of them; errs[i] is the outcome of evs[i]. The outbox relay uses it for a batch.
func (p *Publisher) SendAll(ctx context.Context, evs []event.Event) []error {
	errs := make([]error, len(evs))
	if !p.nc.IsConnected() {
		for i := range errs {
			errs[i] = ErrNotConnected
		}
		return errs
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, len(evs))
	for i, ev := range evs {
		if errs[i] = events.Validate(ev); errs[i] != nil {
			continue
		}
		msg, err := encode(Subject(ev.Type()), ev)
		if err != nil {
			errs[i] = err
			continue
		}
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID())
		if futures[i], errs[i] = p.js.PublishMsgAsync(msg); errs[i] != nil {
			errs[i] = fmt.Errorf("eventstream: publish %s: %w", ev.Type(), errs[i])
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("eventstream: publish %s: %w", evs[i].Type(), err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("eventstream: publish %s: no ack: %w", evs[i].Type(), ctx.Err())
		}
	}
	return errs
}

// RelayDelivery is the outbox relay's DeliverAll for p: a batch of committed events is
// published in order and the rows are marked sent once their acks are in. An event that
// is not valid can never be published and is dead-lettered in the outbox.
func RelayDelivery(p *Publisher) func(ctx context.Context, ms []outbox.Message) []error {
	return func(ctx context.Context, ms []outbox.Message) []error {
		evs := make([]event.Event, len(ms))
		for i, m := range ms {
			evs[i] = m.Event
		}
		errs := p.SendAll(ctx, evs)
		for i, err := range errs {
			var ve *events.ValidationError
			if errors.As(err, &ve) {
				errs[i] = outbox.Permanent(err)
			}
		}
		return errs
	}
}

// Check reports whether the connection is up.
func (p *Publisher) Check() error { return Check(p.nc) }

// Close drains nothing: every Send has returned by then.
func (p *Publisher) Close() { p.nc.Close() }

func encode(subject string, ev event.Event) (*nats.Msg, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("eventstream: encode event: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set("Content-Type", contentType)
	return msg, nil
}

func decode(data []byte) (event.Event, error) {
	var ev event.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("eventstream: not a structured CloudEvent: %w", err)
	}
	return ev, nil
}
