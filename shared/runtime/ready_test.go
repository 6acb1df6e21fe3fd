package runtime

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// /_/ready follows the dependencies; /_/health does not (a restart would not help).
func TestServer_ReadyFollowsDependencies(t *testing.T) {
	s, ts := testServer(t, Config{}, NewRouter("test"), nil)
	var down atomic.Bool
	down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.WatchDependencies(ctx, func(context.Context) error {
		if down.Load() {
			return errors.New("postgres: connection refused")
		}
		return nil
	}, 10*time.Millisecond)
	status := func(path string) int {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(want int) {
		deadline := time.Now().Add(2 * time.Second)
		for status("/_/ready") != want {
			if time.Now().After(deadline) {
				t.Fatalf("/_/ready: want %d", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(http.StatusServiceUnavailable)
	if got := status("/_/health"); got != http.StatusOK {
		t.Errorf("/_/health while a dependency is down: want 200, got %d", got)
	}
	down.Store(false)
	waitFor(http.StatusOK)
}
