// Package uplink is the edge-bridge's side of the platform: signed calls (shared/callsign,
// caller kind "kiosk", app id = kiosk id) to the kiosk and loss-report functions, and the
// forwarder that drains the durable queues to them in order.
package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sscard/platform/shared/callsign"
)

// Event is one queued event, as POST /kiosks/{id}/events takes it.
type Event struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time string          `json:"time"` // RFC 3339
	Data json.RawMessage `json:"data"`
}

// Event types the kiosk posts.
const (
	TypeHeartbeat     = "kiosk.heartbeat"
	TypeCardRead      = "kiosk.card.read"
	TypeSelfCheck     = "kiosk.selfcheck"
	TypeCommandResult = "kiosk.command.result"
)

// MaxBatch is the most events the platform takes in one post.
const MaxBatch = 500

// Command is a remote command as GET /kiosks/{id}/commands delivers it.
type Command struct {
	ID       string          `json:"id"`
	Command  string          `json:"command"`
	Args     json.RawMessage `json:"args"`
	IssuedAt string          `json:"issuedAt"`
}

// Client calls the platform for one kiosk. Kiosk and Loss are signed clients for the
// kiosk and loss-report functions under the kiosk's own SM2 key; Caller builds clients
// for other functions (the kiosk UI's actions).
type Client struct {
	KioskID string
	Caller  func(function string) *callsign.Client
}

// ErrPermanent marks an answer that will not change on retry (the request is wrong).
var ErrPermanent = errors.New("uplink: refused")

// Do sends one signed call to function and returns the authenticated answer; a
// non-2xx answer is an error (wrapping ErrPermanent for 400, 404, 413, 422).
func (c *Client) Do(ctx context.Context, function string, r callsign.Request) (*callsign.Response, error) {
	resp, err := c.Caller(function).Do(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	err = fmt.Errorf("%s %s %s: %d %s", function, r.Method, r.Path, resp.StatusCode, snippet(resp.Body))
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return resp, fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return resp, err
}

func snippet(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

// Recorded is the platform's answer to a batch.
type Recorded struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// PostEvents posts one batch (raw JSON events, in order).
func (c *Client) PostEvents(ctx context.Context, evs []json.RawMessage) (Recorded, error) {
	body, err := json.Marshal(map[string]any{"events": evs})
	if err != nil {
		return Recorded{}, err
	}
	resp, err := c.Do(ctx, "kiosk", callsign.Request{Method: http.MethodPost, Path: "/kiosks/" + c.KioskID + "/events",
		Body: body, ContentType: "application/json"})
	if err != nil {
		return Recorded{}, err
	}
	var r Recorded
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		return Recorded{}, fmt.Errorf("events answer: %w", err)
	}
	return r, nil
}

// Commands fetches the commands waiting for this kiosk (the platform marks them delivered).
func (c *Client) Commands(ctx context.Context) ([]Command, error) {
	resp, err := c.Do(ctx, "kiosk", callsign.Request{Method: http.MethodGet, Path: "/kiosks/" + c.KioskID + "/commands"})
	if err != nil {
		return nil, err
	}
	var out struct {
		Commands []Command `json:"commands"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return nil, fmt.Errorf("commands answer: %w", err)
	}
	return out.Commands, nil
}

// PostLog uploads one day's log, gzip-compressed.
func (c *Client) PostLog(ctx context.Context, date string, gz []byte) error {
	_, err := c.Do(ctx, "kiosk", callsign.Request{Method: http.MethodPost, Path: "/kiosks/" + c.KioskID + "/logs",
		Body: gz, ContentType: "text/plain; charset=utf-8",
		Header: http.Header{"X-Log-Date": {date}, "Content-Encoding": {"gzip"}}})
	return err
}

// BlacklistEntry is one card of the loss-report blacklist.
type BlacklistEntry struct {
	CardNo     string `json:"cardNo"`
	Status     string `json:"status"`
	StatusCode string `json:"statusCode"`
	Version    int64  `json:"version"`
}

// BlacklistDelta is loss-report's answer to "what changed after since".
type BlacklistDelta struct {
	Since            int64            `json:"since"`
	Version          int64            `json:"version"`
	Current          int64            `json:"currentVersion"`
	More             bool             `json:"more"`
	SnapshotRequired bool             `json:"snapshotRequired"`
	Adds             []BlacklistEntry `json:"adds"`
	Removes          []BlacklistEntry `json:"removes"`
}

// BlacklistSnapshot is the whole blacklist at Version.
type BlacklistSnapshot struct {
	Version int64            `json:"version"`
	Count   int              `json:"count"`
	Cards   []BlacklistEntry `json:"cards"`
}

// BlacklistDelta asks loss-report for the changes after since.
func (c *Client) BlacklistDelta(ctx context.Context, since int64) (BlacklistDelta, error) {
	var d BlacklistDelta
	resp, err := c.Do(ctx, "loss-report", callsign.Request{Method: http.MethodGet, Path: "/blacklist",
		Query: url.Values{"since": {strconv.FormatInt(since, 10)}}})
	if err == nil {
		err = json.Unmarshal(resp.Body, &d)
	}
	return d, err
}

// BlacklistSnapshot fetches the whole blacklist.
func (c *Client) BlacklistSnapshot(ctx context.Context) (BlacklistSnapshot, error) {
	var s BlacklistSnapshot
	resp, err := c.Do(ctx, "loss-report", callsign.Request{Method: http.MethodGet, Path: "/blacklist/snapshot"})
	if err == nil {
		err = json.Unmarshal(resp.Body, &s)
	}
	return s, err
}
