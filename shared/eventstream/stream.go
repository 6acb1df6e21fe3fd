// Package eventstream carries CloudEvents on NATS JetStream: outbox relays publish each
// event to one stream (Publisher), and the event connector keeps one durable consumer per
// route of the events catalog and posts each event to its function (Connector). Failed
// deliveries are retried with backoff; events a function refuses, or that keep failing,
// go to a dead-letter stream with the reason, from which they can be replayed.
//
// Subjects: an event of type T is published on "events.T" (T is reverse-DNS, so its dots
// become subject tokens); a replay for one consumer goes to "replay.<consumer>.T" in the
// same stream, so only that route sees it; dead letters go to "deadletter.<consumer>".
package eventstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/secrets"
)

// Names of the streams. One events stream holds every type: consumers filter by subject.
const (
	EventsStream     = "EVENTS"
	DeadLetterStream = "DEADLETTERS"
)

// Topology is the shape of the streams; the connector creates or updates them at start.
type Topology struct {
	Replicas        int           // 1 for one server, 3 in production (R3)
	DuplicateWindow time.Duration // the server drops a second publish of an event id within it
	MaxAge          time.Duration // how long delivered events stay in the stream (replay window)
	DeadLetterAge   time.Duration // how long dead letters are kept
}

// DefaultTopology suits one server; production sets Replicas 3.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, DuplicateWindow: 10 * time.Minute, MaxAge: 7 * 24 * time.Hour, DeadLetterAge: 30 * 24 * time.Hour}
}

// Subject is where events of type t are published.
func Subject(t string) string { return "events." + t }

func replaySubject(consumer, t string) string { return "replay." + consumer + "." + t }

func deadLetterSubject(consumer string) string { return "deadletter." + consumer }

// DurableName is the durable consumer of a route: consumer names may not contain dots.
func DurableName(r events.Route) string {
	return "route_" + r.Consumer + "_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(string(r.Type))
}

// EnsureStreams creates or updates the events and dead-letter streams (file storage).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if t.Replicas <= 0 {
		t.Replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: EventsStream, Description: "CloudEvents of the sscard platform (published by outbox relays)",
		Subjects: []string{"events.>", "replay.>"}, Storage: jetstream.FileStorage, Replicas: t.Replicas,
		Retention: jetstream.LimitsPolicy, MaxAge: t.MaxAge, Duplicates: t.DuplicateWindow,
		Discard: jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("eventstream: stream %s: %w", EventsStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: DeadLetterStream, Description: "events a subscriber refused or that kept failing, with the reason",
		Subjects: []string{"deadletter.>"}, Storage: jetstream.FileStorage, Replicas: t.Replicas,
		Retention: jetstream.LimitsPolicy, MaxAge: t.DeadLetterAge, Duplicates: t.DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("eventstream: stream %s: %w", DeadLetterStream, err)
	}
	return nil
}

// Config is how a process reaches NATS, read from the environment:
//
//	nats_url             nats://host:4222[,nats://host2:4222…] (or the event_sink when it is nats://)
//	nats_stream_replicas replicas of the streams the connector creates [1; 3 in production]
//
// Credentials are secrets: nats-user and nats-password (both optional; a local server
// runs without).
type Config struct {
	URL      string
	User     string
	Password string
	Replicas int
}

// LoadConfig reads Config; url is the default server list (e.g. the event sink).
func LoadConfig(environ []string, url string, sec secrets.Reader) (Config, error) {
	e := envconf.New(environ)
	c := Config{URL: e.String("nats_url", url), Replicas: e.Int("nats_stream_replicas", 1, 1, 5)}
	if !IsNATS(c.URL) {
		e.Fail("nats_url", "want nats://host:port (comma-separated for a cluster)")
	}
	if err := e.Err(); err != nil {
		return c, err
	}
	var err error
	if c.User, err = sec.Optional("nats-user"); err != nil {
		return c, err
	}
	if c.Password, err = sec.Optional("nats-password"); err != nil {
		return c, err
	}
	return c, nil
}

// IsNATS reports whether sink names a NATS server rather than an HTTP endpoint.
func IsNATS(sink string) bool {
	return strings.HasPrefix(sink, "nats://") || strings.HasPrefix(sink, "tls://")
}

// Connect opens a connection that never gives up: it does not fail when the server is
// down at start (the relay and connector retry), and reconnects forever.
func Connect(c Config, name string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250 * time.Millisecond), nats.ReconnectJitter(100*time.Millisecond, time.Second)}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("eventstream: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("eventstream: %w", err)
	}
	return nc, js, nil
}

// ErrNotConnected is Check's answer while the connection is down.
var ErrNotConnected = errors.New("eventstream: not connected to NATS")

// Check reports whether nc is connected (for readiness).
func Check(nc *nats.Conn) error {
	if nc == nil || !nc.IsConnected() {
		return ErrNotConnected
	}
	return nil
}
