// Package reader watches the kiosk's card readers through PC/SC: it reports readers
// coming and going and cards inserted and removed, and reads each inserted social
// security card (shared/sscard). It re-establishes its PC/SC context by itself when
// pcscd restarts or a reader is unplugged, so the daemon never needs a restart for that.
package reader

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sscard/platform/shared/sscard"
)

// Kind is what happened at a reader.
type Kind string

const (
	CardRead   Kind = "card.read"        // a card was inserted and read whole
	ReadFailed Kind = "card.read-failed" // a card was inserted but could not be read
	CardGone   Kind = "card.removed"     // the card left the reader (or the reader left)
)

// Event is one thing that happened at a reader. Card is set for CardRead only; it holds
// the holder's personal data, which must not leave the kiosk (use Card.Public()).
type Event struct {
	Kind   Kind
	Reader string
	ATR    []byte
	Card   *sscard.Card
	Err    error
	At     time.Time
}

// Health is the reader component's state as heartbeats report it.
type Health string

const (
	OK     Health = "ok"     // PC/SC answers and at least one reader is attached
	Absent Health = "absent" // PC/SC answers but no reader is attached
	Fault  Health = "fault"  // PC/SC (pcscd, winscard) does not answer
)

// Watcher watches all readers PC/SC knows.
type Watcher struct {
	// OnEvent receives the events in order, on the watcher's goroutine.
	OnEvent func(Event)
	Log     *slog.Logger
	// Retry is the pause before establishing the context again (default 1 s); Poll is how
	// long one wait for a change may block before the context is checked (default 5 s).
	Retry, Poll time.Duration

	mu       sync.Mutex
	health   Health
	readers  []string
	lastErr  string
	contexts int
}

// Status is the watcher's current state.
type Status struct {
	Health   Health   `json:"health"`
	Readers  []string `json:"readers"`
	Error    string   `json:"error,omitempty"`
	Contexts int      `json:"contexts"` // PC/SC contexts established so far (1 + recoveries)
}

// Status returns the current state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.health
	if h == "" {
		h = Fault
	}
	return Status{Health: h, Readers: append([]string(nil), w.readers...), Error: w.lastErr, Contexts: w.contexts}
}

func (w *Watcher) set(h Health, readers []string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.health, w.readers, w.lastErr = h, readers, ""
	if err != nil {
		w.lastErr = err.Error()
	}
}

func (w *Watcher) emit(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if w.OnEvent != nil {
		w.OnEvent(e)
	}
}

func (w *Watcher) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}

func (w *Watcher) durations() (retry, poll time.Duration) {
	retry, poll = w.Retry, w.Poll
	if retry <= 0 {
		retry = time.Second
	}
	if poll <= 0 {
		poll = 5 * time.Second
	}
	return retry, poll
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
