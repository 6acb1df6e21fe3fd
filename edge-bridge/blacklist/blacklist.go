// Package blacklist keeps the kiosk's copy of loss-report's versioned blacklist (cards
// under loss or cancelled) in the state file, so the kiosk answers "is this card
// blocked" while offline. It starts from a snapshot and follows the deltas.
package blacklist

import (
	"context"
	"encoding/json"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/edge-bridge/uplink"
)

var bucket = []byte("blacklist")

const versionKey = "blacklist.version"

// List is the local blacklist.
type List struct{ S *store.Store }

// Source is where the platform's blacklist comes from (uplink.Client).
type Source interface {
	BlacklistDelta(ctx context.Context, since int64) (uplink.BlacklistDelta, error)
	BlacklistSnapshot(ctx context.Context) (uplink.BlacklistSnapshot, error)
}

// Version is the version the local copy is at; synced is false before the first sync.
func (l *List) Version() (v int64, synced bool) {
	b, _ := l.S.Get(versionKey)
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, b != nil && err == nil
}

// Check answers whether cardNo is blocked, from the local copy.
func (l *List) Check(cardNo string) (blocked bool, e uplink.BlacklistEntry, version int64, err error) {
	err = l.S.DB.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			if v := b.Get([]byte(cardNo)); v != nil {
				blocked = true
				return json.Unmarshal(v, &e)
			}
		}
		return nil
	})
	version, _ = l.Version()
	return blocked, e, version, err
}

// Sync brings the local copy up to the platform's current version: deltas while the
// platform can answer them, a snapshot when it cannot (first sync, compacted history).
// Each step is one transaction, so a crash leaves a consistent (older) version.
func (l *List) Sync(ctx context.Context, src Source) (int64, error) {
	for {
		since, synced := l.Version()
		if !synced {
			if err := l.snapshot(ctx, src); err != nil {
				return since, err
			}
			continue
		}
		d, err := src.BlacklistDelta(ctx, since)
		if err != nil {
			return since, err
		}
		if d.SnapshotRequired {
			if err := l.snapshot(ctx, src); err != nil {
				return since, err
			}
			continue
		}
		if err := l.S.DB.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			for _, e := range d.Removes {
				if err := b.Delete([]byte(e.CardNo)); err != nil {
					return err
				}
			}
			for _, e := range d.Adds {
				v, _ := json.Marshal(e)
				if err := b.Put([]byte(e.CardNo), v); err != nil {
					return err
				}
			}
			return store.PutTx(tx, versionKey, []byte(strconv.FormatInt(d.Version, 10)))
		}); err != nil {
			return since, err
		}
		if !d.More || d.Version <= since {
			return d.Version, nil
		}
	}
}

func (l *List) snapshot(ctx context.Context, src Source) error {
	s, err := src.BlacklistSnapshot(ctx)
	if err != nil {
		return err
	}
	v := s.Version
	return l.S.DB.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucket) != nil {
			if err := tx.DeleteBucket(bucket); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		for _, e := range s.Cards {
			val, _ := json.Marshal(e)
			if err := b.Put([]byte(e.CardNo), val); err != nil {
				return err
			}
		}
		return store.PutTx(tx, versionKey, []byte(strconv.FormatInt(v, 10)))
	})
}
