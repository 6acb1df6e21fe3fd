package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// spool keeps events on disk until the platform acknowledges them: one file per event,
// written to a temporary name and renamed, so a power cut leaves whole events or none.
type spool struct {
	dir string
	mu  sync.Mutex
	seq int64
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &spool{dir: dir}, nil
}

func (s *spool) put(ev event.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.seq++
	name := fmt.Sprintf("%020d-%06d.json", time.Now().UnixNano(), s.seq)
	s.mu.Unlock()
	tmp := filepath.Join(s.dir, "."+name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, name))
}

func (s *spool) files() []string {
	m, _ := filepath.Glob(filepath.Join(s.dir, "[0-9]*.json"))
	sort.Strings(m)
	return m
}

func (s *spool) len() int { return len(s.files()) }

// drain sends spooled events oldest first; an event is removed only after send succeeds.
// A file that is not a readable event is moved aside rather than blocking the queue.
func (s *spool) drain(ctx context.Context, send func(context.Context, event.Event) error) (int, error) {
	n := 0
	for _, f := range s.files() {
		b, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		var ev event.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			_ = os.Rename(f, f+".bad")
			continue
		}
		if err := send(ctx, ev); err != nil {
			return n, err
		}
		if err := os.Remove(f); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
