package eventstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one event a route gave up on.
type DeadLetter struct {
	Seq         uint64    `json:"seq"` // in the dead-letter stream; what Replay takes
	Consumer    string    `json:"consumer"`
	EventType   string    `json:"eventType"`
	EventID     string    `json:"eventId"`
	EventSource string    `json:"eventSource"`
	Reason      string    `json:"reason"`
	Status      int       `json:"status"` // the function's HTTP status; 0 when none
	Deliveries  int       `json:"deliveries"`
	DeadAt      time.Time `json:"deadAt"`
}

// ListDeadLetters returns up to limit dead letters, oldest first; consumer "" means all.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, consumer string, limit int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("eventstream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventstream: %w", err)
	}
	out := []DeadLetter{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	subject := "deadletter.>"
	if consumer != "" {
		subject = deadLetterSubject(consumer)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // nothing for subject at or after seq
		}
		if err != nil {
			return nil, fmt.Errorf("eventstream: %w", err)
		}
		out = append(out, deadLetterOf(m))
		seq = m.Sequence
	}
	return out, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	h := m.Header
	d := DeadLetter{Seq: m.Sequence, Consumer: h.Get(hdrConsumer), EventType: h.Get(hdrEventType), Reason: h.Get(hdrReason)}
	d.Status, _ = strconv.Atoi(h.Get(hdrStatus))
	d.Deliveries, _ = strconv.Atoi(h.Get(hdrDeliveries))
	d.DeadAt, _ = time.Parse(time.RFC3339Nano, h.Get(hdrDeadAt))
	if ev, err := decode(m.Data); err == nil {
		d.EventID, d.EventSource = ev.ID(), ev.Source()
	}
	return d
}

// Replay sends dead letter seq once more to its route only (a replay subject that only
// that route's consumer filters), then removes it from the dead-letter stream. If it
// fails again it comes back as a new dead letter.
func Replay(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	s, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return fmt.Errorf("eventstream: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("eventstream: dead letter %d: %w", seq, err)
	}
	d := deadLetterOf(m)
	if d.Consumer == "" || d.EventType == "" {
		return fmt.Errorf("eventstream: message %d is not a dead letter", seq)
	}
	msg := nats.NewMsg(replaySubject(d.Consumer, d.EventType))
	msg.Data = m.Data
	msg.Header.Set("Content-Type", contentType)
	// A replay retried after a crash is dropped by the server, not delivered twice.
	msg.Header.Set(jetstream.MsgIDHeader, "replay-"+strconv.FormatUint(seq, 10)+"-"+d.DeadAt.Format(time.RFC3339Nano))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("eventstream: replay %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("eventstream: replayed %d but could not remove it: %w", seq, err)
	}
	return nil
}

// KeepDeadLetter stores an event another system gave up on (the Knative Broker's
// deadLetterSink) in the dead-letter stream, under consumer, with the reason it gave.
func KeepDeadLetter(ctx context.Context, js jetstream.JetStream, consumer, reason string, status int, ev event.Event) error {
	msg, err := encode(deadLetterSubject(consumer), ev)
	if err != nil {
		return err
	}
	msg.Header.Set(hdrReason, truncate(reason, 1000))
	msg.Header.Set(hdrStatus, strconv.Itoa(status))
	msg.Header.Set(hdrConsumer, consumer)
	msg.Header.Set(hdrEventType, ev.Type())
	msg.Header.Set(hdrDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(jetstream.MsgIDHeader, "dl-"+consumer+"-"+ev.Source()+"-"+ev.ID())
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("eventstream: keep dead letter: %w", err)
	}
	return nil
}
