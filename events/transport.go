package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// ErrNotCloudEvent is returned by FromHTTP for requests that are not a
// single CloudEvent in binary or structured mode.
var ErrNotCloudEvent = errors.New("events: not a CloudEvent")

// Media types of the structured and batch JSON formats.
const (
	mediaStructured = "application/cloudevents+json"
	mediaBatch      = "application/cloudevents-batch+json"
)

// Sender posts events to one sink (a Knative broker or an OpenFaaS gateway
// route) in binary content mode: data stays the HTTP body and attributes go
// into ce-* headers, so proxies and logs that look at bodies see the plain
// payload, and the broker can route on headers without parsing JSON.
type Sender struct {
	target string
	proto  *cehttp.Protocol
}

// SendError is a failed Send. StatusCode is the sink's HTTP status, or 0 when
// no response arrived (connection refused, timeout, ...).
type SendError struct {
	StatusCode int
	Err        error
}

func (e *SendError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("events: send failed: %v", e.Err)
	}
	return fmt.Sprintf("events: send failed with HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// NewSender returns a Sender posting to sinkURL, which must be an absolute
// http or https URL. A nil client means one with a 10 s timeout: the default
// client has none, and a stuck sink would otherwise hold a function
// invocation until the platform kills it.
func NewSender(sinkURL string, client *http.Client) (*Sender, error) {
	u, err := url.Parse(sinkURL)
	if err != nil {
		return nil, fmt.Errorf("events: sink URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("events: sink URL %q: want an absolute http(s) URL", sinkURL)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	p, err := cehttp.New(cehttp.WithTarget(u.String()), cehttp.WithClient(*client))
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &Sender{target: u.String(), proto: p}, nil
}

// Send validates ev and posts it once, in binary mode. It does not retry:
// redelivery is the broker's and the caller's business, and a blind retry
// here would multiply with theirs. Any non-2xx answer or transport failure
// is a *SendError; an invalid event is a *ValidationError and is not sent.
func (s *Sender) Send(ctx context.Context, ev event.Event) error {
	if err := Validate(ev); err != nil {
		return err
	}
	res := s.proto.Send(binding.WithForceBinary(ctx), binding.ToMessage(&ev))
	if protocol.IsACK(res) {
		return nil
	}
	// Only a response yields an *cehttp.Result; a failed dial comes back as
	// a bare NACK receipt (not "undelivered"), hence StatusCode 0 there.
	var hr *cehttp.Result
	if errors.As(res, &hr) {
		return &SendError{StatusCode: hr.StatusCode, Err: res}
	}
	return &SendError{Err: res}
}

// IsCloudEvent reports whether a request claims to carry a single
// CloudEvent: binary mode (ce-specversion header) or structured JSON mode
// (Content-Type application/cloudevents+json, parameters allowed).
func IsCloudEvent(h http.Header) bool {
	if h.Get("Ce-Specversion") != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == mediaStructured
}

// FromHTTP parses a received request (headers and the already read,
// size-limited body) in binary or structured mode and validates the result.
// Batch mode is refused: one request is one event, so one HTTP status can
// acknowledge it. Errors wrap ErrNotCloudEvent when the request is not a
// CloudEvent at all; otherwise they are *ValidationError.
func FromHTTP(ctx context.Context, h http.Header, body []byte) (event.Event, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && mt == mediaBatch {
		return event.Event{}, fmt.Errorf("%w: batch mode is not accepted, send one event per request", ErrNotCloudEvent)
	}
	if !IsCloudEvent(h) {
		return event.Event{}, ErrNotCloudEvent
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return event.Event{}, fmt.Errorf("events: %w", err)
	}
	req.Header = h.Clone()
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer func() { _ = msg.Finish(nil) }()
	switch msg.ReadEncoding() {
	case binding.EncodingBinary, binding.EncodingStructured:
	default:
		// e.g. a ce-specversion the SDK does not know, or another
		// structured format than JSON.
		return event.Event{}, ErrNotCloudEvent
	}
	ev, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return event.Event{}, &ValidationError{Fields: map[string]string{"event": err.Error()}}
	}
	if err := Validate(*ev); err != nil {
		return event.Event{}, err
	}
	return *ev, nil
}
