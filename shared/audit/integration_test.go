//go:build integration

package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/tests/testenv"
)

func entry(i int) Entry {
	return Entry{Actor: fmt.Sprintf("op-%d", i%3), Channel: "outlet", Action: "card.loss.report", ObjectType: "card",
		ObjectID: fmt.Sprintf("card-%04d", i), RequestID: fmt.Sprintf("req-%08d", i), Detail: map[string]string{"to": "temporary-loss"}}
}

// chain makes a fresh database with n entries written by 4 concurrent writers and a
// checkpoint every 10 entries.
func chain(t *testing.T, n int) (*pgxpool.Pool, *sm2.PrivateKey) {
	t.Helper()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	key, _ := gm.GenerateKey()
	log := &Log{Signer: key, CheckpointEvery: 10}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if _, err := log.Append(context.Background(), pool, entry(i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return pool, key
}

func verify(t *testing.T, pool *pgxpool.Pool, key *sm2.PrivateKey) *Report {
	t.Helper()
	r, err := Verify(context.Background(), pool, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tamper runs SQL as the table owner with the append-only triggers off, as an intruder
// with database rights could.
func tamper(t *testing.T, pool *pgxpool.Pool, sqls ...string) {
	t.Helper()
	ctx := context.Background()
	all := append([]string{`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change`,
		`ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_no_change`}, sqls...)
	all = append(all, `ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change`,
		`ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_no_change`)
	for _, s := range all {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestIntegration_ChainConcurrentAndIntact(t *testing.T) {
	ctx := context.Background()
	pool, key := chain(t, 60)
	r := verify(t, pool, key)
	if r.Broken != nil || r.Entries != 60 || r.Checkpoints != 6 {
		t.Fatalf("report %+v broken %v", r, r.Broken)
	}
	// An entry in a business transaction that rolls back leaves a gap in seq, not a break.
	tx, _ := pool.Begin(ctx)
	if _, err := (&Log{}).AppendTx(ctx, tx, entry(99)); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if _, err := (&Log{}).Append(ctx, pool, entry(100)); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, pool, key); r.Broken != nil || r.Entries != 61 || r.LastSeq != 62 || r.LastPos != 61 || r.Pending != 0 {
		t.Fatalf("after a rolled-back append: %+v %v", r, r.Broken)
	}
	// The triggers refuse changes, sealing a sealed entry again included.
	for _, s := range []string{`UPDATE audit_log SET action = 'x' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 1`,
		`UPDATE audit_log SET hash = prev_hash WHERE pos = 3`, `UPDATE audit_log SET pos = 1000 WHERE pos = 3`,
		`TRUNCATE audit_log`, `UPDATE audit_checkpoints SET seq = 11 WHERE seq = 10`, `TRUNCATE audit_checkpoints`} {
		if _, err := pool.Exec(ctx, s); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", s, err)
		}
	}
	// An entry with a phone number in it never gets in.
	e := entry(1)
	e.Detail["sms_to"] = "13812345678"
	if _, err := (&Log{}).Append(ctx, pool, e); err == nil {
		t.Fatal("PII accepted")
	}
}

func TestIntegration_VerifyFindsTampering(t *testing.T) {
	other, _ := gm.GenerateKey()
	cases := []struct {
		name    string
		sql     []string
		seq     int64
		because string
	}{
		{"edited entry", []string{`UPDATE audit_log SET action = 'card.unlock' WHERE pos = 5`}, 5, "edited"},
		{"edited detail", []string{`UPDATE audit_log SET detail = '{"to": "formal-loss"}' WHERE pos = 7`}, 7, "edited"},
		{"edited seq", []string{`UPDATE audit_log SET seq = 1000 WHERE pos = 8`}, 8, "edited"},
		{"deleted entry", []string{`DELETE FROM audit_log WHERE pos = 5`}, 6, "deleted"},
		{"reordered entries", []string{`UPDATE audit_log SET pos = -5 WHERE pos = 5`, `UPDATE audit_log SET pos = 5 WHERE pos = 6`,
			`UPDATE audit_log SET pos = 6 WHERE pos = -5`}, 5, "moved"},
		{"inserted entry", []string{`INSERT INTO audit_log (seq, pos, actor, channel, action, object_type, object_id, prev_hash, hash)
			SELECT 1000, 1000, 'op-9', 'admin', 'card.unlock', 'card', 'card-9999', hash, hash FROM audit_log WHERE pos = 20`}, 1000, "inserted"},
		{"deleted tail", []string{`DELETE FROM audit_log WHERE pos > 25`}, 30, "missing"},
		{"bad checkpoint signature", []string{`UPDATE audit_checkpoints SET signature = set_byte(signature, 10, get_byte(signature, 10) # 1) WHERE seq = 20`}, 20, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, key := chain(t, 30)
			tamper(t, pool, tc.sql...)
			r := verify(t, pool, key)
			if r.Broken == nil || r.Broken.Pos != tc.seq || !strings.Contains(r.Broken.Reason, tc.because) {
				t.Fatalf("want break at %d (%s), got %+v", tc.seq, tc.because, r.Broken)
			}
		})
	}
	// Rewriting every hash after an edit keeps the chain consistent, but the signed
	// checkpoint after the edit no longer matches.
	t.Run("edited and rehashed", func(t *testing.T) {
		ctx := context.Background()
		pool, key := chain(t, 30)
		tamper(t, pool, `UPDATE audit_log SET action = 'card.unlock' WHERE pos = 13`)
		rows, _ := pool.Query(ctx, `SELECT pos, seq, at, actor, channel, action, object_type, object_id, coalesce(request_id, ''), detail
			FROM audit_log ORDER BY pos`)
		var es []Entry
		for rows.Next() {
			var e Entry
			_ = rows.Scan(&e.Pos, &e.Seq, &e.At, &e.Actor, &e.Channel, &e.Action, &e.ObjectType, &e.ObjectID, &e.RequestID, &e.Detail)
			es = append(es, e)
		}
		rows.Close()
		prev := genesis
		var fix []string
		for _, e := range es {
			h := chainHash(prev, &e)
			fix = append(fix, fmt.Sprintf(`UPDATE audit_log SET prev_hash = '\x%x', hash = '\x%x' WHERE pos = %d`, prev, h, e.Pos))
			prev = h
		}
		tamper(t, pool, fix...)
		r := verify(t, pool, key)
		if r.Broken == nil || r.Broken.Pos != 20 || !strings.Contains(r.Broken.Reason, "checkpoint") {
			t.Fatalf("want the checkpoint at 20 to catch the rewrite, got %+v", r.Broken)
		}
	})
	t.Run("verified with the wrong key", func(t *testing.T) {
		pool, _ := chain(t, 12)
		r, err := Verify(context.Background(), pool, &other.PublicKey)
		if err != nil || r.Broken == nil || r.Broken.Pos != 10 || !strings.Contains(r.Broken.Reason, "unknown key") {
			t.Fatalf("%+v %v", r.Broken, err)
		}
	})
}

// Writers in open transactions never wait for each other; they commit in another order
// than they inserted, one rolls back, and the sealer (woken by the appends) links exactly
// the committed entries into one intact chain, with checkpoints.
func TestIntegration_GroupCommitSealing(t *testing.T) {
	log := &Log{CheckpointEvery: 7}
	ctx, pool, key, stop := withSealer(t, log)

	// 20 transactions open at once: if appends took a lock until commit, the second
	// AppendTx would block here and the test would time out.
	var txs []pgx.Tx
	for i := range 20 {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.AppendTx(ctx, tx, entry(i))
		if err != nil {
			t.Fatal(err)
		}
		if e.Pos != 0 || e.Hash != nil {
			t.Fatalf("AppendTx sealed inside the writer's transaction: %+v", e)
		}
		txs = append(txs, tx)
	}
	for i := len(txs) - 1; i >= 0; i-- { // commit newest first
		if i == 3 {
			_ = txs[i].Rollback(ctx)
			continue
		}
		if err := txs[i].Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 5*time.Second, "every committed entry sealed", func() bool {
		r, err := Verify(ctx, pool, &key.PublicKey)
		return err == nil && r.Entries == 19 && r.Pending == 0
	})
	r := verify(t, pool, key)
	if r.Broken != nil || r.LastPos != 19 || r.Checkpoints < 2 {
		t.Fatalf("report %+v broken %v", r, r.Broken)
	}
	var rolledBack int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE object_id = 'card-0003'`).Scan(&rolledBack); err != nil || rolledBack != 0 {
		t.Fatalf("rolled-back entry present: %d %v", rolledBack, err)
	}
	// A committed entry nobody woke a sealer for (another instance crashed after commit)
	// is pending until some sealer runs, and Verify counts it without judging it.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := (&Log{}).AppendTx(ctx, tx, entry(50))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, pool, key); r.Broken != nil || r.Entries < 19 {
		t.Fatalf("%+v", r)
	}
	cp, err := log.Checkpoint(ctx, pool)
	if err != nil || cp == nil || cp.Pos != 20 {
		t.Fatalf("checkpoint on demand seals first: %+v %v", cp, err)
	}
	stop()
	if r := verify(t, pool, key); r.Broken != nil || r.Entries != 20 || r.Pending != 0 {
		t.Fatalf("%+v %v", r, r.Broken)
	}
}

// The sealer looks only above its floor (sealFloor). An entry whose transaction stays open
// while the floor passes its seq is still sealed once it commits (by the full look), and
// the chain stays whole; entries committed meanwhile are sealed at once.
func TestIntegration_SlowTransactionBelowTheFloorIsSealed(t *testing.T) {
	log := &Log{sealGrace: 30 * time.Millisecond, sealSweep: 1500 * time.Millisecond}
	ctx, pool, key, _ := withSealer(t, log)

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	held, err := log.AppendTx(ctx, slow, entry(0))
	if err != nil {
		t.Fatal(err)
	}
	// Later entries commit, and the sealer seals them, while the slow one is open, for long
	// enough that the floor rises above it.
	var last Entry
	for i := 1; i <= 20; i++ {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			last, err = log.AppendTx(ctx, tx, entry(i))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	testenv.Eventually(t, 2*time.Second, "the entries after the slow one sealed", func() bool {
		e, err := log.entry(ctx, pool, last.Seq)
		return err == nil && e.Pos > 0
	})
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the slow transaction's entry sealed", func() bool {
		e, err := log.entry(ctx, pool, held.Seq)
		return err == nil && e.Pos > 0
	})
	if r := verify(t, pool, key); r.Broken != nil || r.Entries != 21 || r.Pending != 0 {
		t.Fatalf("%+v %v", r, r.Broken)
	}
}

// withSealer gives log a signing key and runs its sealer on a database of its own until
// stop (which waits for the sealer's last seal) or the end of the test.
func withSealer(t *testing.T, log *Log) (ctx context.Context, pool *pgxpool.Pool, key *sm2.PrivateKey, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	env := testenv.Load(t)
	pool = env.Pool(t, env.NewDatabase(t))
	key, _ = gm.GenerateKey()
	log.Signer = key
	done := make(chan struct{})
	go func() { defer close(done); log.RunSealer(ctx, pool, nil) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return ctx, pool, key, stop
}
