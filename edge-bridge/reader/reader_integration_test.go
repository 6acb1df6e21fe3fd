//go:build integration && linux

package reader_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/edge-bridge/reader"
	"github.com/sscard/platform/shared/sscard"
	"github.com/sscard/platform/tests/vcard"
)

type recorder struct {
	mu sync.Mutex
	ev []reader.Event
}

func (r *recorder) add(e reader.Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }

// wait returns the next event after index i of kind k (any kind when ""), failing after d.
func (r *recorder) wait(t *testing.T, from int, k reader.Kind, d time.Duration) (reader.Event, int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i := from; i < len(r.ev); i++ {
			if k == "" || r.ev[i].Kind == k {
				e := r.ev[i]
				r.mu.Unlock()
				return e, i + 1
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no %q event within %s after #%d; events: %+v", k, d, from, r.ev)
	return reader.Event{}, 0
}

func (r *recorder) len() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.ev) }

// Through the real pcscd and vpcd: a card is read whole; a malformed card and a card
// pulled out mid-read are errors with no card; pcscd killed and started again under the
// watcher: the card is read again on a new context.
func TestReaderThroughPCSCD(t *testing.T) {
	pc := vcard.StartPCSCD(t)
	rec := &recorder{}
	w := &reader.Watcher{OnEvent: rec.add, Retry: 200 * time.Millisecond, Poll: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for w.Status().Health != reader.OK {
		if time.Now().After(deadline) {
			t.Fatalf("reader health %+v", w.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := vcard.Sample(11)
	card, err := vcard.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Insert(pc.Addr); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e, next := rec.wait(t, 0, "", 10*time.Second)
	if e.Kind != reader.CardRead || e.Card == nil || e.Card.CardNo != p.CardNo || e.Card.Name != p.Name ||
		e.Card.SSN != p.SSN || len(e.ATR) == 0 {
		t.Fatalf("first event %+v (err %v)", e, e.Err)
	}
	t.Logf("insert → card read in %s (%d READ RECORDs)", time.Since(start).Round(time.Millisecond), card.Reads())
	card.Remove()
	_, next = rec.wait(t, next, reader.CardGone, 10*time.Second)

	for _, f := range []vcard.Fault{{Kind: vcard.Short, Field: sscard.Name}, {Kind: vcard.Vanish, Field: sscard.SSN}} {
		card.SetFault(f)
		if err := card.Insert(pc.Addr); err != nil {
			t.Fatal(err)
		}
		e, next = rec.wait(t, next, "", 10*time.Second)
		if e.Kind != reader.ReadFailed || e.Card != nil || e.Err == nil {
			t.Fatalf("fault %d: want a failed read without a card, got %+v", f.Kind, e)
		}
		var fe *sscard.FieldError
		if f.Kind == vcard.Short && !errors.As(e.Err, &fe) {
			t.Errorf("short record: want a field error, got %v", e.Err)
		}
		t.Logf("fault %d: %v", f.Kind, e.Err)
		card.Remove()
		_, next = rec.wait(t, next, reader.CardGone, 10*time.Second)
		card.SetFault(vcard.Fault{})
	}

	// pcscd crashes with a card in the reader and comes back: the watcher recovers alone.
	if err := card.Insert(pc.Addr); err != nil {
		t.Fatal(err)
	}
	_, next = rec.wait(t, next, reader.CardRead, 10*time.Second)
	before := w.Status().Contexts
	pc.Kill()
	_, next = rec.wait(t, next, reader.CardGone, 10*time.Second)
	if h := w.Status().Health; h != reader.Fault {
		t.Errorf("pcscd down: health %q, want fault", h)
	}
	pc.Start()
	e, next = rec.wait(t, next, reader.CardRead, 20*time.Second)
	if e.Card.CardNo != p.CardNo || w.Status().Contexts <= before {
		t.Fatalf("after the pcscd restart: %+v, contexts %d → %d", e, before, w.Status().Contexts)
	}
	card.Remove()
	rec.wait(t, next, reader.CardGone, 10*time.Second)
}
