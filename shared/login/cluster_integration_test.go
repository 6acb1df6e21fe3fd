//go:build integration

package login_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/tests/testenv"
)

// The login session paths (scripts, pipelines, the batched poll) and the callsign nonce
// window work on a 3-master Redis Cluster, with sessions spread over every master.
func TestLoginAndNoncesOnRedisCluster(t *testing.T) {
	addrs := testenv.StartRedisCluster(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("several addresses: want a cluster client, got %T", rdb)
	}
	ctx := context.Background()
	s := login.NewSessions(rdb, login.Config{})
	now := time.Now()
	masters := map[string]bool{}
	for i := range 60 {
		sess, err := s.Create(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		person := fmt.Sprintf("p-%d", i)
		if err := s.Confirm(ctx, sess.ID, person, now); err != nil {
			t.Fatal(err)
		}
		r, err := s.Poll(ctx, sess.ID, sess.PollSecret, now)
		if err != nil {
			t.Fatal(err)
		}
		if r.Token == "" || r.PersonID != person {
			t.Fatalf("session %d: want a token for %s, got %+v", i, person, r)
		}
		if h, err := s.Holder(ctx, r.Token); err != nil || h != person {
			t.Fatalf("holder: want %s, got %q %v", person, h, err)
		}
		if again, err := s.Poll(ctx, sess.ID, sess.PollSecret, now.Add(5*time.Second)); err != nil || again.Token != "" {
			t.Fatalf("second poll: want no second token, got %+v %v", again, err)
		}
		cc := rdb.(*redis.ClusterClient)
		if m, err := cc.MasterForKey(ctx, "login:{"+sess.ID+"}"); err == nil {
			masters[m.Options().Addr] = true
		}
	}
	if len(masters) != 3 {
		t.Errorf("want sessions on all three masters, got %v", masters)
	}
	n := callsign.RedisNonces{Client: rdb}
	for i := range 20 {
		key := fmt.Sprintf("nonce:{caller-%d}:n%d", i, i)
		first, err := n.Remember(ctx, key, time.Minute)
		if err != nil || !first {
			t.Fatalf("nonce %s: want first use, got %v %v", key, first, err)
		}
		if again, err := n.Remember(ctx, key, time.Minute); err != nil || again {
			t.Fatalf("nonce %s: want a replay refused, got %v %v", key, again, err)
		}
	}
}
