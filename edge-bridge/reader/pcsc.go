//go:build windows || cgo

package reader

import (
	"context"
	"errors"
	"slices"

	"github.com/ebfe/scard"

	"github.com/sscard/platform/shared/sscard"
)

// Built says whether this build reads cards through PC/SC.
const Built = true

// pnp is the pseudo-reader whose state changes when readers are attached or detached.
const pnp = `\\?PnP?\Notification`

// Run watches until ctx ends. A PC/SC error ends the session: the context is released
// and established again (a restarted pcscd leaves the old context looking valid while
// every call on it fails).
func (w *Watcher) Run(ctx context.Context) {
	retry, _ := w.durations()
	for ctx.Err() == nil {
		c, err := scard.EstablishContext()
		if err != nil {
			w.set(Fault, nil, err)
			sleep(ctx, retry)
			continue
		}
		w.mu.Lock()
		w.contexts++
		n := w.contexts
		w.mu.Unlock()
		if n > 1 {
			w.log().Info("PC/SC context established again", "contexts", n)
		}
		stop := context.AfterFunc(ctx, func() { _ = c.Cancel() })
		err = w.session(ctx, c)
		stop()
		_ = c.Release()
		if ctx.Err() != nil {
			return
		}
		w.set(Fault, nil, err)
		w.log().Warn("PC/SC session ended; establishing the context again", "error", err.Error())
		sleep(ctx, retry)
	}
}

// session watches on one context until a PC/SC call fails.
func (w *Watcher) session(ctx context.Context, c *scard.Context) error {
	_, poll := w.durations()
	present := map[string]bool{}
	defer func() { // the session's knowledge of cards ends with it
		for r, in := range present {
			if in {
				w.emit(Event{Kind: CardGone, Reader: r})
			}
		}
	}()
	for {
		readers, err := c.ListReaders()
		if errors.Is(err, scard.ErrNoReadersAvailable) {
			readers, err = nil, nil
		}
		if err != nil {
			return err
		}
		if len(readers) == 0 {
			w.set(Absent, nil, nil)
		} else {
			w.set(OK, readers, nil)
		}
		for r, in := range present {
			if !slices.Contains(readers, r) {
				if in {
					w.emit(Event{Kind: CardGone, Reader: r})
				}
				delete(present, r)
			}
		}
		rs := make([]scard.ReaderState, 0, len(readers)+1)
		for _, r := range readers {
			rs = append(rs, scard.ReaderState{Reader: r, CurrentState: scard.StateUnaware})
		}
		rs = append(rs, scard.ReaderState{Reader: pnp, CurrentState: scard.StateUnaware})
		for relist := false; !relist; {
			err := c.GetStatusChange(rs, poll)
			if errors.Is(err, scard.ErrTimeout) {
				// A quiet wait proves nothing about pcscd: ask it something.
				if _, err := c.ListReaders(); err != nil && !errors.Is(err, scard.ErrNoReadersAvailable) {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			for i := range rs {
				s := &rs[i]
				if s.EventState&scard.StateChanged == 0 {
					continue
				}
				s.CurrentState = s.EventState &^ scard.StateChanged
				if s.Reader == pnp || s.EventState&(scard.StateUnknown|scard.StateUnavailable) != 0 {
					relist = true
					continue
				}
				in := s.EventState&scard.StatePresent != 0 && s.EventState&scard.StateMute == 0
				switch {
				case in && !present[s.Reader]:
					present[s.Reader] = true
					w.read(c, s.Reader, s.Atr)
				case !in && present[s.Reader]:
					present[s.Reader] = false
					w.emit(Event{Kind: CardGone, Reader: s.Reader})
				}
			}
		}
	}
}

// read connects to the card in reader and reads it inside one transaction.
func (w *Watcher) read(c *scard.Context, reader string, atr []byte) {
	atr = slices.Clone(atr)
	fail := func(err error) { w.emit(Event{Kind: ReadFailed, Reader: reader, ATR: atr, Err: err}) }
	card, err := c.Connect(reader, scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1)
	if err != nil {
		fail(err)
		return
	}
	defer func() { _ = card.Disconnect(scard.LeaveCard) }()
	if err := card.BeginTransaction(); err != nil {
		fail(err)
		return
	}
	defer func() { _ = card.EndTransaction(scard.LeaveCard) }()
	data, err := sscard.Read(transmitter{card})
	if err != nil {
		fail(err)
		return
	}
	w.emit(Event{Kind: CardRead, Reader: reader, ATR: atr, Card: data})
}

type transmitter struct{ c *scard.Card }

func (t transmitter) Transmit(cmd []byte) ([]byte, error) { return t.c.Transmit(cmd) }
