//go:build integration

package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/tests/testenv"
)

// BeginWith commits fn's work, rolls back on fn's or first's error, nests savepoints, and
// leaves the pooled connection outside any transaction either way.
func TestBeginWith(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	if _, err := pool.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v text)`); err != nil {
		t.Fatal(err)
	}
	insert := func(id int, v string) func(pgx.Tx) error {
		return func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO t VALUES ($1, $2)`, id, v)
			return err
		}
	}
	read := func(br pgx.BatchResults) error { _, err := br.Exec(); return err }
	lock := func() *pgx.Batch {
		b := &pgx.Batch{}
		b.Queue(`SELECT count(*) FROM t`)
		return b
	}
	count := func() (n int) {
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n)
		return n
	}
	if err := db.BeginWith(ctx, pool, lock(), read, insert(1, "a")); err != nil || count() != 1 {
		t.Fatalf("commit: %v, %d rows", err, count())
	}
	boom := errors.New("boom")
	if err := db.BeginWith(ctx, pool, lock(), read, func(tx pgx.Tx) error {
		_ = insert(2, "b")(tx)
		return boom
	}); !errors.Is(err, boom) || count() != 1 {
		t.Fatalf("fn error: %v, %d rows", err, count())
	}
	if err := db.BeginWith(ctx, pool, lock(), func(pgx.BatchResults) error { return boom }, insert(3, "c")); !errors.Is(err, boom) || count() != 1 {
		t.Fatalf("first error: %v, %d rows", err, count())
	}
	// A failing statement in the first batch: the error, nothing written.
	bad := &pgx.Batch{}
	bad.Queue(`SELECT * FROM missing_table`)
	if err := db.BeginWith(ctx, pool, bad, read, insert(4, "d")); err == nil || count() != 1 {
		t.Fatalf("bad first statement: %v, %d rows", err, count())
	}
	// A savepoint rolled back inside a committed transaction.
	if err := db.BeginWith(ctx, pool, lock(), read, func(tx pgx.Tx) error {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if err := insert(1, "dup")(sp); err == nil {
			return errors.New("duplicate key accepted")
		}
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		return insert(5, "e")(tx)
	}); err != nil || count() != 2 {
		t.Fatalf("savepoint: %v, %d rows", err, count())
	}
	// Every pooled connection is idle, outside a transaction.
	for range 4 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st := c.Conn().PgConn().TxStatus(); st != 'I' {
			t.Errorf("connection back in the pool in transaction state %q", st)
		}
		defer c.Release()
	}
}

// A batch sent without BEGIN is one implicit transaction: when its guard holds, all of
// it commits; when the guard fails, the guard is named and none of it is written.
func TestSendGuarded_ImplicitTransaction(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	if _, err := pool.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, v int); CREATE TABLE log (id int, v int);
		INSERT INTO t VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	change := func(from, to int, extra ...string) error {
		b := &pgx.Batch{}
		b.Queue(db.GuardOne("t-version", `UPDATE t SET v = $2 WHERE id = 1 AND v = $1`), from, to)
		for _, cond := range extra {
			b.Queue(db.Guard("t-extra", cond))
		}
		b.Queue(`INSERT INTO log VALUES (1, $1)`, to)
		return db.SendGuarded(ctx, pool, b)
	}
	state := func() (v, logged int) {
		_ = pool.QueryRow(ctx, `SELECT (SELECT v FROM t), (SELECT count(*) FROM log)`).Scan(&v, &logged)
		return v, logged
	}
	if err := change(0, 1); err != nil {
		t.Fatal(err)
	}
	if v, n := state(); v != 1 || n != 1 {
		t.Fatalf("guard held: v %d, %d logged", v, n)
	}
	// Read v = 0, but another change came first.
	err := change(0, 2)
	if db.FailedGuard(err) != "t-version" {
		t.Fatalf("stale version: want guard t-version, got %v", err)
	}
	if v, n := state(); v != 1 || n != 1 {
		t.Fatalf("failed guard wrote: v %d, %d logged", v, n)
	}
	// A later guard fails after the update ran: the update is rolled back too.
	if err := change(1, 3, `false`); db.FailedGuard(err) != "t-extra" {
		t.Fatalf("second guard: want t-extra, got %v", err)
	}
	if v, n := state(); v != 1 || n != 1 {
		t.Fatalf("failed second guard wrote: v %d, %d logged", v, n)
	}
	// GuardAll names the first condition that fails, in order.
	b0 := &pgx.Batch{}
	b0.Queue(db.GuardAll(db.Cond{Name: "first", SQL: `$1::int = 1`}, db.Cond{Name: "second", SQL: `$1::int = 2`},
		db.Cond{Name: "third", SQL: `false`}), 1)
	if err := db.SendGuarded(ctx, pool, b0); db.FailedGuard(err) != "second" {
		t.Fatalf("GuardAll: want second, got %v", err)
	}
	b0 = &pgx.Batch{}
	b0.Queue(db.GuardAll(db.Cond{Name: "first", SQL: `true`}, db.Cond{Name: "second", SQL: `true`}))
	if err := db.SendGuarded(ctx, pool, b0); err != nil {
		t.Fatalf("GuardAll holding: %v", err)
	}
	// Other errors are not guards.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO t VALUES (1, 9)`)
	if err := db.SendGuarded(ctx, pool, b); err == nil || db.FailedGuard(err) != "" {
		t.Fatalf("duplicate key: want a plain error, got %v", err)
	}
	for _, bad := range []string{"", "Upper", "a'; DROP TABLE t; --", "1abc"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("guard name %q accepted", bad)
				}
			}()
			db.Guard(bad, "true")
		}()
	}
}
