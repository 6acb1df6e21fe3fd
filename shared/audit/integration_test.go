//go:build integration

package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

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
	if r := verify(t, pool, key); r.Broken != nil || r.Entries != 61 || r.LastSeq != 62 {
		t.Fatalf("after a rolled-back append: %+v %v", r, r.Broken)
	}
	// A REPEATABLE READ transaction is refused (its snapshot could fork the chain).
	rr, _ := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if _, err := (&Log{}).AppendTx(ctx, rr, entry(1)); err == nil {
		t.Fatal("append under REPEATABLE READ accepted")
	}
	_ = rr.Rollback(ctx)
	// The triggers refuse changes.
	for _, s := range []string{`UPDATE audit_log SET action = 'x' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 1`,
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
		{"edited entry", []string{`UPDATE audit_log SET action = 'card.unlock' WHERE seq = 5`}, 5, "edited"},
		{"edited detail", []string{`UPDATE audit_log SET detail = '{"to": "formal-loss"}' WHERE seq = 7`}, 7, "edited"},
		{"deleted entry", []string{`DELETE FROM audit_log WHERE seq = 5`}, 6, "deleted"},
		{"reordered entries", []string{`UPDATE audit_log SET seq = -5 WHERE seq = 5`, `UPDATE audit_log SET seq = 5 WHERE seq = 6`,
			`UPDATE audit_log SET seq = 6 WHERE seq = -5`}, 5, "moved"},
		{"inserted entry", []string{`INSERT INTO audit_log (seq, actor, channel, action, object_type, object_id, prev_hash, hash)
			SELECT 1000, 'op-9', 'admin', 'card.unlock', 'card', 'card-9999', hash, hash FROM audit_log WHERE seq = 20`}, 1000, "inserted"},
		{"deleted tail", []string{`DELETE FROM audit_log WHERE seq > 25`}, 30, "missing"},
		{"bad checkpoint signature", []string{`UPDATE audit_checkpoints SET signature = set_byte(signature, 10, get_byte(signature, 10) # 1) WHERE seq = 20`}, 20, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, key := chain(t, 30)
			tamper(t, pool, tc.sql...)
			r := verify(t, pool, key)
			if r.Broken == nil || r.Broken.Seq != tc.seq || !strings.Contains(r.Broken.Reason, tc.because) {
				t.Fatalf("want break at %d (%s), got %+v", tc.seq, tc.because, r.Broken)
			}
		})
	}
	// Rewriting every hash after an edit keeps the chain consistent, but the signed
	// checkpoint after the edit no longer matches.
	t.Run("edited and rehashed", func(t *testing.T) {
		ctx := context.Background()
		pool, key := chain(t, 30)
		tamper(t, pool, `UPDATE audit_log SET action = 'card.unlock' WHERE seq = 13`)
		rows, _ := pool.Query(ctx, `SELECT seq, at, actor, channel, action, object_type, object_id, coalesce(request_id, ''), detail
			FROM audit_log ORDER BY seq`)
		var es []Entry
		for rows.Next() {
			var e Entry
			_ = rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Channel, &e.Action, &e.ObjectType, &e.ObjectID, &e.RequestID, &e.Detail)
			es = append(es, e)
		}
		rows.Close()
		prev := genesis
		var fix []string
		for _, e := range es {
			h := chainHash(prev, &e)
			fix = append(fix, fmt.Sprintf(`UPDATE audit_log SET prev_hash = '\x%x', hash = '\x%x' WHERE seq = %d`, prev, h, e.Seq))
			prev = h
		}
		tamper(t, pool, fix...)
		r := verify(t, pool, key)
		if r.Broken == nil || r.Broken.Seq != 20 || !strings.Contains(r.Broken.Reason, "checkpoint") {
			t.Fatalf("want the checkpoint at 20 to catch the rewrite, got %+v", r.Broken)
		}
	})
	t.Run("verified with the wrong key", func(t *testing.T) {
		pool, _ := chain(t, 12)
		r, err := Verify(context.Background(), pool, &other.PublicKey)
		if err != nil || r.Broken == nil || r.Broken.Seq != 10 || !strings.Contains(r.Broken.Reason, "unknown key") {
			t.Fatalf("%+v %v", r.Broken, err)
		}
	})
}
