//go:build integration

package login

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/tests/testenv"
)

func newSessions(t *testing.T, cfg Config) *Sessions {
	t.Helper()
	env := testenv.Load(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(t, "redis-password")})
	t.Cleanup(func() { rdb.Close() })
	return NewSessions(rdb, cfg)
}

func TestSessions_ConfirmedSessionMintsExactlyOneToken(t *testing.T) {
	s := newSessions(t, Config{Interval: 50 * time.Millisecond})
	ctx, now := context.Background(), time.Now()
	sess, err := s.Create(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(sess.ID) || sess.ExpiresAt.Sub(now) != DefaultConfig.Validity {
		t.Fatalf("bad session %+v", sess)
	}
	r, err := s.Poll(ctx, sess.ID, sess.PollSecret, now)
	if err != nil || r.State != Waiting || r.Token != "" {
		t.Fatalf("first poll: want waiting, got %+v %v", r, err)
	}
	if _, err := s.Transition(ctx, sess.ID, Scanned, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if r, _ := s.Poll(ctx, sess.ID, sess.PollSecret, now); r.State != Scanned {
		t.Fatalf("want scanned, got %+v", r)
	}
	if err := s.Confirm(ctx, sess.ID, "person-1", now); err != nil {
		t.Fatal(err)
	}
	// Concurrent polls after confirmation: exactly one gets the token.
	time.Sleep(60 * time.Millisecond)
	var mu sync.Mutex
	var tokens []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Poll(ctx, sess.ID, sess.PollSecret, now)
			if err == nil && r.Token != "" {
				mu.Lock()
				tokens = append(tokens, r.Token)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(tokens) != 1 {
		t.Fatalf("want exactly one token minted, got %d", len(tokens))
	}
	if who, err := s.Holder(ctx, tokens[0]); err != nil || who != "person-1" {
		t.Errorf("token holder: want person-1, got %q %v", who, err)
	}
	time.Sleep(60 * time.Millisecond)
	if r, _ := s.Poll(ctx, sess.ID, sess.PollSecret, now); r.State != Consumed || r.Token != "" {
		t.Errorf("after success: want consumed without a token, got %+v", r)
	}
	if err := s.Revoke(ctx, tokens[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Holder(ctx, tokens[0]); !errors.Is(err, ErrUnknown) {
		t.Errorf("revoked token: want ErrUnknown, got %v", err)
	}
}

func TestSessions_SlowDownGrowsTheInterval(t *testing.T) {
	s := newSessions(t, Config{Interval: 2 * time.Second, SlowDownStep: 5 * time.Second})
	ctx, now := context.Background(), time.Now()
	sess, _ := s.Create(ctx, now)
	if r, _ := s.Poll(ctx, sess.ID, sess.PollSecret, now); r.SlowDown || r.Interval != 2*time.Second {
		t.Fatalf("first poll: want no slow_down at 2s, got %+v", r)
	}
	r, _ := s.Poll(ctx, sess.ID, sess.PollSecret, now)
	if !r.SlowDown || r.Interval != 7*time.Second || r.State != Waiting {
		t.Fatalf("too fast: want slow_down with 7s, got %+v", r)
	}
	r, _ = s.Poll(ctx, sess.ID, sess.PollSecret, now)
	if !r.SlowDown || r.Interval != 12*time.Second {
		t.Fatalf("still too fast: want 12s, got %+v", r)
	}
}

func TestSessions_ExpiryCancelRefreshAndUnregistered(t *testing.T) {
	s := newSessions(t, Config{Validity: 200 * time.Millisecond, Interval: 10 * time.Millisecond})
	ctx := context.Background()
	sess, _ := s.Create(ctx, time.Now())
	later := time.Now().Add(time.Second)
	if r, _ := s.Poll(ctx, sess.ID, sess.PollSecret, later); r.State != Expired {
		t.Errorf("after validity: want expired, got %+v", r)
	}
	if err := s.Confirm(ctx, sess.ID, "p", later); !errors.Is(err, ErrIllegal) {
		t.Errorf("confirming an expired session: want ErrIllegal, got %v", err)
	}

	old, _ := s.Create(ctx, time.Now())
	fresh, err := s.Refresh(ctx, old.ID, time.Now())
	if err != nil || fresh.ID == old.ID {
		t.Fatalf("refresh: want a new session, got %+v %v", fresh, err)
	}
	if r, _ := s.Poll(ctx, old.ID, old.PollSecret, time.Now()); r.State != Cancelled {
		t.Errorf("refreshed session: want cancelled, got %+v", r)
	}
	if err := s.Confirm(ctx, old.ID, "p", time.Now()); !errors.Is(err, ErrIllegal) {
		t.Errorf("confirming a cancelled session: want ErrIllegal, got %v", err)
	}

	if err := s.Confirm(ctx, fresh.ID, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Poll(ctx, fresh.ID, fresh.PollSecret, time.Now())
	if !r.RegistrationRequired || r.Token != "" {
		t.Errorf("unregistered holder: want registration required and no token, got %+v", r)
	}
	if _, err := s.Poll(ctx, "not-a-session", randomID(), time.Now()); !errors.Is(err, ErrUnknown) {
		t.Errorf("garbage id: want ErrUnknown, got %v", err)
	}
	if _, err := s.Poll(ctx, randomID(), randomID(), time.Now()); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown id: want ErrUnknown, got %v", err)
	}
}

func TestSessions_RedisDownMintsNothing(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	s := NewSessions(rdb, Config{})
	r, err := s.Poll(context.Background(), randomID(), randomID(), time.Now())
	if err == nil || r.Token != "" {
		t.Errorf("want an error and no token, got %+v %v", r, err)
	}
}
