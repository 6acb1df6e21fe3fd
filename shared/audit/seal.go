package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/wake"
)

// Sealing is group commit for the chain. Writers insert unsealed entries in their own
// transactions and never wait for each other; a sealer, holding the chain lock only for
// its own short transaction, links every committed unsealed entry (in seq order) after
// the chain's tail. Which instance seals does not matter, and an entry left unsealed by a
// crash is sealed by the next sealer that runs anywhere.

// SealBatch is the most entries one sealing transaction links.
const SealBatch = 500

// Seal links every committed unsealed entry into the chain and returns how many it sealed.
// Sealers anywhere take turns on the chain lock (db.Drain).
func (l *Log) Seal(ctx context.Context, pool db.Pool) (int, error) {
	n, _, err := l.sealAbove(ctx, pool, 0)
	return n, err
}

// sealAbove seals the committed unsealed entries whose seq is above floor (sealFloor says
// why a sealer looks only there), and returns how many and the highest seq it sealed.
func (l *Log) sealAbove(ctx context.Context, pool db.Pool, floor int64) (n int, newest int64, err error) {
	n, err = db.Drain(ctx, pool, lockKey,
		db.Pending{SQL: `SELECT EXISTS (SELECT 1 FROM audit_log WHERE pos IS NULL AND seq > $1)`, Args: []any{floor}},
		SealBatch, func(tx pgx.Tx) (int, error) {
			k, top, err := l.sealBatch(ctx, tx, floor)
			newest = max(newest, top)
			return k, err
		})
	return n, newest, err
}

// sealBatch links up to SealBatch entries with seq above floor, in seq order, after the
// chain's tail, and returns how many and the highest seq. It runs under the chain lock in
// read committed, so it sees what the previous sealer committed.
func (l *Log) sealBatch(ctx context.Context, tx pgx.Tx, floor int64) (int, int64, error) {
	rows, err := tx.Query(ctx, `SELECT seq, at, actor, channel, action, object_type, object_id, coalesce(request_id, ''), detail
		FROM audit_log WHERE pos IS NULL AND seq > $2 ORDER BY seq LIMIT $1`, SealBatch, floor)
	if err != nil {
		return 0, 0, err
	}
	pending, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := row.Scan(&e.Seq, &e.At, &e.Actor, &e.Channel, &e.Action, &e.ObjectType, &e.ObjectID, &e.RequestID, &e.Detail)
		return e, err
	})
	if err != nil || len(pending) == 0 {
		return 0, 0, err
	}
	prev, pos := genesis, int64(0)
	err = tx.QueryRow(ctx, `SELECT pos, hash FROM audit_log WHERE pos IS NOT NULL ORDER BY pos DESC LIMIT 1`).Scan(&pos, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, err
	}
	if len(prev) != gm.SM3Size {
		return 0, 0, errors.New("audit: the chain's tail has no valid hash; run audit-verify")
	}
	seqs := make([]int64, len(pending))
	poss := make([]int64, len(pending))
	prevs := make([][]byte, len(pending))
	hashes := make([][]byte, len(pending))
	for i := range pending {
		e := &pending[i]
		pos++
		e.Pos, e.PrevHash = pos, prev
		e.Hash = chainHash(prev, e)
		seqs[i], poss[i], prevs[i], hashes[i] = e.Seq, e.Pos, e.PrevHash, e.Hash
		prev = e.Hash
	}
	tag, err := tx.Exec(ctx, `UPDATE audit_log a SET pos = u.pos, prev_hash = u.prev, hash = u.hash
		FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(seq, pos, prev, hash)
		WHERE a.seq = u.seq AND a.pos IS NULL`, seqs, poss, prevs, hashes)
	if err != nil {
		return 0, 0, err
	}
	if int(tag.RowsAffected()) != len(pending) {
		return 0, 0, errors.New("audit: entries changed while sealing")
	}
	return len(pending), pending[len(pending)-1].Seq, l.checkpointIfDue(ctx, tx, pending)
}

// checkpointIfDue signs every entry of the batch that ends a run of CheckpointEvery
// entries since the last checkpoint, so checkpoints stay evenly spaced however the
// entries were batched.
func (l *Log) checkpointIfDue(ctx context.Context, tx pgx.Tx, batch []Entry) error {
	every := l.CheckpointEvery
	if every == 0 {
		every = 1000
	}
	if l.Signer == nil || every < 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM audit_checkpoints`).Scan(&last); err != nil {
		return err
	}
	for i := range batch {
		if e := &batch[i]; e.Pos-last >= every {
			if _, err := l.writeCheckpoint(ctx, tx, e.Pos, e.Hash, e.At.UTC()); err != nil {
				return err
			}
			last = e.Pos
		}
	}
	return nil
}

// entry reads one entry by seq.
func (l *Log) entry(ctx context.Context, pool db.Pool, seq int64) (Entry, error) {
	var e Entry
	var pos *int64
	err := pool.QueryRow(ctx, `SELECT seq, pos, at, actor, channel, action, object_type, object_id, coalesce(request_id, ''),
		detail, prev_hash, hash FROM audit_log WHERE seq = $1`, seq).Scan(&e.Seq, &pos, &e.At, &e.Actor, &e.Channel,
		&e.Action, &e.ObjectType, &e.ObjectID, &e.RequestID, &e.Detail, &e.PrevHash, &e.Hash)
	if pos != nil {
		e.Pos = *pos
	}
	e.At = e.At.UTC()
	return e, err
}

// wakeup tells this process's sealer that entries were appended.
type wakeup struct {
	wake.Signal
	last atomic.Int64 // unix nanos of the newest append
}

func (w *wakeup) appended() {
	w.last.Store(time.Now().UnixNano())
	w.Notify()
}

// Sealer timing: an append arms the sealer to run within SealPoll, so the entries of all
// the transactions committing meanwhile are sealed together (an append comes before its
// commit: sealing at once would mostly find nothing, and under load would never rest).
// While appends are recent it looks again every SealPoll; when idle it still looks every
// SealIdle. A look starts above the sealer's floor (sealFloor); the first look after each
// SealSweep looks at everything, for an entry of a transaction that took longer than
// SealGrace from insert to commit, and for entries other instances left behind (a crash
// after commit).
const (
	SealPoll  = 20 * time.Millisecond
	SealIdle  = 5 * time.Second
	SealGrace = time.Second
	SealSweep = 10 * time.Second
	recent    = 2 * time.Second
)

// RunSealer seals until ctx ends, then once more (bounded) so entries committed by the
// last requests do not wait for another instance. Errors (a database outage) are logged
// and retried every second; entries stay safely unsealed meanwhile.
func (l *Log) RunSealer(ctx context.Context, pool db.Pool, log *slog.Logger) {
	wake := l.wake.C()
	timer := time.NewTimer(SealPoll)
	defer timer.Stop()
	due := time.Now().Add(SealPoll)
	after := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		due = time.Now().Add(d)
	}
	floor := sealFloor{grace: l.sealGrace, sweep: l.sealSweep}
	if floor.grace == 0 {
		floor.grace, floor.sweep = SealGrace, SealSweep
	}
	var failing bool
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if _, err := l.Seal(final, pool); err != nil && log != nil {
				log.Warn("audit seal at stop failed; another instance will seal", "error", err.Error())
			}
			cancel()
			return
		case <-wake:
			if time.Until(due) > SealPoll {
				after(SealPoll)
			}
			continue
		case <-timer.C:
		}
		_, newest, err := l.sealAbove(ctx, pool, floor.next(time.Now()))
		if err == nil { // a failed look may report a batch that rolled back
			floor.sealed(time.Now(), newest)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing && log != nil:
			log.Warn("audit seal failed; retrying", "error", err.Error())
			failing = true
		case err == nil && failing:
			if log != nil {
				log.Info("audit sealing recovered")
			}
			failing = false
		}
		switch {
		case failing:
			after(time.Second)
		case time.Since(time.Unix(0, l.wake.last.Load())) < recent:
			after(SealPoll)
		default:
			after(SealIdle)
		}
	}
}
