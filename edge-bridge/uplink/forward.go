package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sscard/platform/edge-bridge/store"
)

// Forwarder drains a queue of events to the platform oldest first, in batches, and
// removes a batch only after the platform acknowledged it. A crash between the post and
// the removal sends that batch again with the same event ids, which the platform counts
// as duplicates, so each event is recorded once. While the platform is unreachable it
// retries with backoff, and at once when new events arrive or Kick is called.
type Forwarder struct {
	Queue *store.Queue
	// Dead holds events the platform refused as invalid (kept on disk, never dropped).
	Dead   *store.Queue
	Post   func(ctx context.Context, evs []json.RawMessage) (Recorded, error)
	Batch  int // default MaxBatch
	Log    *slog.Logger
	MinGap time.Duration // first backoff (default 500 ms)
	MaxGap time.Duration // longest backoff (default 30 s)

	kick chan struct{}
	once sync.Once

	mu      sync.Mutex
	online  bool
	lastErr string
	lastOK  time.Time
	sent    int64
	dups    int64
}

// State is what heartbeats and the local status report.
type State struct {
	Online     bool      `json:"online"`
	LastError  string    `json:"lastError,omitempty"`
	LastSentAt time.Time `json:"lastSentAt"`
	Sent       int64     `json:"sent"`
	Duplicates int64     `json:"duplicates"`
}

// State returns the forwarder's state.
func (f *Forwarder) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return State{Online: f.online, LastError: f.lastErr, LastSentAt: f.lastOK, Sent: f.sent, Duplicates: f.dups}
}

// Kick makes the forwarder try now.
func (f *Forwarder) Kick() {
	f.init()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Forwarder) init() { f.once.Do(func() { f.kick = make(chan struct{}, 1) }) }

// Run drains until ctx ends.
func (f *Forwarder) Run(ctx context.Context) {
	f.init()
	minGap, maxGap := f.MinGap, f.MaxGap
	if minGap <= 0 {
		minGap = 500 * time.Millisecond
	}
	if maxGap <= 0 {
		maxGap = 30 * time.Second
	}
	gap := time.Duration(0)
	isolate := false // after a refused batch: send one event at a time to find the bad one
	for ctx.Err() == nil {
		if gap > 0 {
			t := time.NewTimer(gap)
			select {
			case <-ctx.Done():
			case <-t.C:
			case <-f.kick:
			case <-f.Queue.Notify():
			}
			t.Stop()
		}
		n := f.Batch
		if n <= 0 || n > MaxBatch {
			n = MaxBatch
		}
		if isolate {
			n = 1
		}
		items, err := f.Queue.Peek(n)
		if err != nil {
			f.fail(err)
			gap = maxGap
			continue
		}
		if len(items) == 0 {
			isolate = false
			select {
			case <-ctx.Done():
			case <-f.Queue.Notify():
			case <-f.kick:
			}
			gap = 0
			continue
		}
		evs := make([]json.RawMessage, len(items))
		for i, it := range items {
			evs[i] = it.Value
		}
		rec, err := f.Post(ctx, evs)
		last := items[len(items)-1].Seq
		switch {
		case err == nil:
			if err := f.Queue.Ack(last); err != nil {
				f.fail(err)
				gap = maxGap
				continue
			}
			f.mu.Lock()
			f.online, f.lastErr, f.lastOK = true, "", time.Now()
			f.sent += int64(rec.Accepted)
			f.dups += int64(rec.Duplicates)
			f.mu.Unlock()
			gap, isolate = 0, false
		case errors.Is(err, ErrPermanent) && len(items) > 1:
			isolate = true // the batch holds an event the platform will never take: find it
			gap = 0
		case errors.Is(err, ErrPermanent):
			f.log().Error("platform refused an event; kept aside", "error", err.Error())
			if f.Dead != nil {
				if err := f.Dead.Append(items[0].Value); err != nil {
					f.fail(err)
					gap = maxGap
					continue
				}
			}
			if err := f.Queue.Ack(last); err != nil {
				f.fail(err)
			}
			gap, isolate = 0, false
		default:
			f.fail(err)
			if gap = 2*gap + minGap; gap > maxGap {
				gap = maxGap
			}
		}
	}
}

func (f *Forwarder) fail(err error) {
	f.mu.Lock()
	was := f.online
	f.online, f.lastErr = false, err.Error()
	f.mu.Unlock()
	if was {
		f.log().Warn("platform unreachable; events stay queued", "queued", f.Queue.Len(), "error", err.Error())
	}
}

func (f *Forwarder) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}
