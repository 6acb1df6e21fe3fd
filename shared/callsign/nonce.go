package callsign

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// NonceStore remembers nonces. Remember records key for ttl and reports whether it was
// new; an error means the store could not answer (the request then fails closed).
type NonceStore interface {
	Remember(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// RedisNonces keeps nonces in Redis with one atomic SET key 1 NX PX ttl per request, so
// every replica of every function shares them.
type RedisNonces struct{ Client redis.UniversalClient }

// Remember implements NonceStore.
func (r RedisNonces) Remember(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return r.Client.SetNX(ctx, key, 1, ttl).Result()
}

// MemoryNonces keeps nonces in this process only: for tests, benchmarks and a single
// process such as a tool. Functions use RedisNonces, since replicas do not share memory.
type MemoryNonces struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	sweep time.Time
}

// Remember implements NonceStore.
func (m *MemoryNonces) Remember(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if now.After(m.sweep) {
		for k, exp := range m.seen {
			if now.After(exp) {
				delete(m.seen, k)
			}
		}
		m.sweep = now.Add(time.Minute)
	}
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.seen[key] = now.Add(ttl)
	return true, nil
}
