// Package store is the edge-bridge's durable state in one bbolt file: ordered queues of
// events and uploads waiting for the platform, the local blacklist, received commands
// and small settings. Every change is one bbolt transaction (fsynced on commit), so a
// kill -9 or a power cut leaves each change whole or absent.
package store

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store is the open state file.
type Store struct {
	DB *bolt.DB

	mu     sync.Mutex
	queues map[string]*Queue
}

// Open opens (or creates) the state file at path. A second daemon on the same file waits
// at most 5 s for the file lock and then fails.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return &Store{DB: db, queues: map[string]*Queue{}}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.DB.Close() }

// Queue returns the named FIFO queue, creating its bucket on first use.
func (s *Store) Queue(name string) (*Queue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[name]; q != nil {
		return q, nil
	}
	q := &Queue{db: s.DB, bucket: []byte("queue/" + name), notify: make(chan struct{}, 1)}
	err := s.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(q.bucket)
		if err != nil {
			return err
		}
		q.n = b.Stats().KeyN
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.queues[name] = q
	return q, nil
}

// Get reads a setting (nil when unset).
func (s *Store) Get(key string) ([]byte, error) {
	var v []byte
	err := s.DB.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(settings); b != nil {
			v = append([]byte(nil), b.Get([]byte(key))...)
		}
		return nil
	})
	if len(v) == 0 {
		v = nil
	}
	return v, err
}

// Put writes a setting; a nil value deletes it.
func (s *Store) Put(key string, v []byte) error {
	return s.DB.Update(func(tx *bolt.Tx) error { return PutTx(tx, key, v) })
}

// PutTx writes a setting inside tx.
func PutTx(tx *bolt.Tx, key string, v []byte) error {
	b, err := tx.CreateBucketIfNotExists(settings)
	if err != nil {
		return err
	}
	if v == nil {
		return b.Delete([]byte(key))
	}
	return b.Put([]byte(key), v)
}

var settings = []byte("settings")

// Queue is a durable FIFO: values keep the order they were appended in; the oldest are
// read with Peek and removed with Ack once the platform has them.
type Queue struct {
	db     *bolt.DB
	bucket []byte
	notify chan struct{}

	mu sync.Mutex
	n  int
}

// Item is one queued value and its sequence number.
type Item struct {
	Seq   uint64
	Value []byte
}

// Append adds values at the end, in one transaction.
func (q *Queue) Append(values ...[]byte) error {
	return q.db.Update(func(tx *bolt.Tx) error { return q.AppendTx(tx, values...) })
}

// AppendTx adds values inside tx (with other changes that must happen with them).
func (q *Queue) AppendTx(tx *bolt.Tx, values ...[]byte) error {
	b := tx.Bucket(q.bucket)
	if b == nil {
		return errors.New("store: queue bucket missing")
	}
	for _, v := range values {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(key(seq), v); err != nil {
			return err
		}
	}
	n := len(values)
	tx.OnCommit(func() {
		q.mu.Lock()
		q.n += n
		q.mu.Unlock()
		select {
		case q.notify <- struct{}{}:
		default:
		}
	})
	return nil
}

// Peek returns up to max of the oldest values.
func (q *Queue) Peek(max int) ([]Item, error) {
	var out []Item
	err := q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(q.bucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, Item{Seq: binary.BigEndian.Uint64(k), Value: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Ack removes every value up to and including seq.
func (q *Queue) Ack(seq uint64) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(q.bucket).Cursor()
		n := 0
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		tx.OnCommit(func() {
			q.mu.Lock()
			q.n -= n
			q.mu.Unlock()
		})
		return nil
	})
}

// Len is the number of values waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Notify receives a value after appends (coalesced).
func (q *Queue) Notify() <-chan struct{} { return q.notify }

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
