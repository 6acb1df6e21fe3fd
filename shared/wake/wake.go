// Package wake is a wake-up call inside one process: writers say there is work, a worker
// waits for it. Calls made while the worker is busy fold into one, and a call never
// blocks the writer (the outbox relay and the audit sealer are woken this way).
package wake

import "sync"

// Signal is one worker's wake-up call; the zero value is ready.
type Signal struct {
	once sync.Once
	c    chan struct{}
}

func (s *Signal) ch() chan struct{} {
	s.once.Do(func() { s.c = make(chan struct{}, 1) })
	return s.c
}

// C is what the worker waits on.
func (s *Signal) C() <-chan struct{} { return s.ch() }

// Notify wakes the worker, or leaves one call pending for it if it is busy.
func (s *Signal) Notify() {
	select {
	case s.ch() <- struct{}{}:
	default:
	}
}
