package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/edge-bridge/store"
)

// The forwarder sends in order, keeps everything while posts fail, and sets aside only
// the one event the platform refuses on its own.
func TestForwarderOrderRetryAndRefused(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q, _ := st.Queue("events")
	dead, _ := st.Queue("refused")
	for i := range 1200 {
		_ = q.Append([]byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	var mu sync.Mutex
	var got []int
	var batches []int
	down := true
	f := &Forwarder{Queue: q, Dead: dead, MinGap: time.Millisecond, MaxGap: 5 * time.Millisecond,
		Post: func(_ context.Context, evs []json.RawMessage) (Recorded, error) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return Recorded{}, errors.New("connection refused")
			}
			for _, e := range evs {
				if string(e) == `{"n":700}` {
					return Recorded{}, fmt.Errorf("%w: 400 bad event", ErrPermanent)
				}
			}
			batches = append(batches, len(evs))
			for _, e := range evs {
				var v struct{ N int }
				_ = json.Unmarshal(e, &v)
				got = append(got, v.N)
			}
			return Recorded{Accepted: len(evs)}, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	if q.Len() != 1200 || f.State().Online {
		t.Fatalf("while down: queue %d, state %+v", q.Len(), f.State())
	}
	mu.Lock()
	down = false
	mu.Unlock()
	f.Kick()
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if q.Len() != 0 || dead.Len() != 1 || len(got) != 1199 {
		t.Fatalf("queue %d, refused %d, sent %d", q.Len(), dead.Len(), len(got))
	}
	for i, n := range got {
		want := i
		if i >= 700 {
			want = i + 1
		}
		if n != want {
			t.Fatalf("event %d sent as #%d", n, i)
		}
	}
	if batches[0] != MaxBatch {
		t.Errorf("first batch %d, want %d", batches[0], MaxBatch)
	}
	items, _ := dead.Peek(1)
	if string(items[0].Value) != `{"n":700}` {
		t.Errorf("refused %s", items[0].Value)
	}
}
