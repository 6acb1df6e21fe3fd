//go:build integration

package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/runtime"
	"github.com/sscard/platform/tests/testenv"
)

// BenchmarkPoll is the whole poll path in one process (runtime server, router, Redis
// script, JSON answer), for profiling: go test -tags integration -bench Poll -cpuprofile.
func BenchmarkPoll(b *testing.B) {
	env := testenv.Load(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(b, "redis-password"), PoolSize: 64})
	defer rdb.Close()
	s := login.NewSessions(rdb, login.Config{Interval: time.Millisecond, Validity: time.Hour})
	r := runtime.NewRouter("login-poll")
	r.Get("/{session}", poll(s))
	cfg, _ := runtime.LoadConfig("login-poll", nil)
	srv := runtime.NewServer(cfg, r, slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ids := make([]login.Session, 4096)
	for i := range ids {
		ids[i], _ = s.Create(context.Background(), time.Now())
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			sess := ids[i%len(ids)]
			req, _ := http.NewRequest("GET", ts.URL+"/"+sess.ID, nil)
			req.Header.Set(login.PollSecretHeader, sess.PollSecret)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkFloor is the floor of the same shape: a bare handler doing one Redis GET.
func BenchmarkFloor(b *testing.B) {
	env := testenv.Load(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(b, "redis-password"), PoolSize: 64})
	defer rdb.Close()
	rdb.Set(context.Background(), "bench:floor", `{"state":"waiting","interval":2}`, 0)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := rdb.Get(r.Context(), "bench:floor").Result()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, v)
	}))
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(ts.URL + "/x")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
