// Package redisbatch sends concurrent calls of one Lua script to Redis in pipelines.
// Calls that arrive while batches are in flight go out together in the next one, so under
// load Redis and this process spend one read and one write per batch instead of per call;
// an idle caller is sent at once. Each call is still its own atomic script run.
//
// No goroutine runs between busy periods: the call that finds a free slot starts one
// that sends batches until nothing is pending, then ends.
package redisbatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batcher pipelines calls of Script on Client.
type Batcher struct {
	client  redis.UniversalClient
	script  *redis.Script
	slots   int           // batches in flight at most (each holds one pooled connection)
	max     int           // calls per batch at most
	timeout time.Duration // of one batch

	mu       sync.Mutex
	pending  []*call
	inflight int
	batches  atomic.Int64
}

// Batches is how many pipelines have been sent so far.
func (b *Batcher) Batches() int64 { return b.batches.Load() }

type call struct {
	keys []string
	args []any
	res  any
	err  error
	done chan struct{}
}

// New returns a Batcher running script on client with up to slots batches in flight.
func New(client redis.UniversalClient, script *redis.Script, slots int) *Batcher {
	return &Batcher{client: client, script: script, slots: max(1, slots), max: 512, timeout: 5 * time.Second}
}

// Run runs the script with keys and args and returns its result, as Script.Run would.
func (b *Batcher) Run(ctx context.Context, keys []string, args ...any) (any, error) {
	c := &call{keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	start := b.inflight < b.slots
	if start {
		b.inflight++
	}
	b.mu.Unlock()
	if start {
		go b.drive()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, ctx.Err() // the batch still runs; its answer is dropped
	}
}

// drive sends batches while calls are pending, then frees its slot.
func (b *Batcher) drive() {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		n := min(len(b.pending), b.max)
		batch := b.pending[:n:n]
		b.pending = append([]*call(nil), b.pending[n:]...)
		b.mu.Unlock()
		b.send(batch)
	}
}

func (b *Batcher) send(batch []*call) {
	b.batches.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmds := b.exec(ctx, batch)
	// A Redis that restarted without the script answers NOSCRIPT: load it, run those again.
	var again []*call
	var idx []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again, idx = append(again, batch[i]), append(idx, i)
		}
	}
	if len(again) > 0 {
		if err := b.script.Load(ctx, b.client).Err(); err == nil {
			for j, cmd := range b.exec(ctx, again) {
				cmds[idx[j]] = cmd
			}
		}
	}
	for i, c := range batch {
		c.res, c.err = cmds[i].Result()
		close(c.done)
	}
}

func (b *Batcher) exec(ctx context.Context, batch []*call) []*redis.Cmd {
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = b.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are per command
	return cmds
}
