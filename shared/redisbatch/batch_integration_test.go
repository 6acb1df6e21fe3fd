//go:build integration

package redisbatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/tests/testenv"
)

// incr adds ARGV[1] to KEYS[1] and returns the new value with the key's name.
var incr = redis.NewScript(`return {KEYS[1], redis.call('INCRBY', KEYS[1], ARGV[1])}`)

// Thousands of concurrent calls each get their own answer, every call runs exactly once,
// few round trips carry them, and a script flushed from Redis is loaded again.
func TestBatcher(t *testing.T) {
	env := testenv.Load(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(t, "redis-password"), PoolSize: 8})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	prefix := fmt.Sprintf("batchtest:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		for i := range 20 {
			rdb.Del(context.Background(), fmt.Sprintf("%s%d", prefix, i))
		}
	})
	b := New(rdb, incr, 4)

	const callers, per = 200, 10
	var wg sync.WaitGroup
	errs := make(chan error, callers*per)
	for c := range callers {
		wg.Go(func() {
			key := fmt.Sprintf("%s%d", prefix, c%20)
			for range per {
				res, err := b.Run(ctx, []string{key}, 1)
				if err != nil {
					errs <- err
					continue
				}
				if got, ok := res.([]any); !ok || len(got) != 2 || got[0] != key {
					errs <- fmt.Errorf("caller %d got %v, not its own key's answer", c, res)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range 20 {
		n, err := rdb.Get(ctx, fmt.Sprintf("%s%d", prefix, i)).Int()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != callers*per {
		t.Fatalf("%d increments applied, want %d: a call ran twice or not at all", total, callers*per)
	}
	if n := b.Batches(); n >= callers*per/2 {
		t.Errorf("%d pipelines for %d concurrent calls: calls were not batched", n, callers*per)
	}

	// Redis lost its scripts (a restart, SCRIPT FLUSH): the batch loads it and goes on.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Run(ctx, []string{prefix + "0"}, 5); err != nil || res.([]any)[1] != int64(per*callers/20+5) {
		t.Fatalf("after SCRIPT FLUSH: %v %v", res, err)
	}

	// A caller that gives up gets its context's error at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Run(cctx, []string{prefix + "0"}, 1); err != context.Canceled {
		t.Fatalf("cancelled caller: %v", err)
	}

	// Redis unreachable: every call in the batch gets the error.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	if _, err := New(down, incr, 2).Run(ctx, []string{prefix + "x"}, 1); err == nil {
		t.Fatal("no error with Redis unreachable")
	}
}
