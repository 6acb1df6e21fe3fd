package db

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BeginWith runs fn in a transaction whose BEGIN travels with its first statements: b's
// statements (reading and locking what the transaction works on) are sent with BEGIN in
// one round trip, read by first, and only then does fn run on the transaction. It saves
// the round trip pgx's Begin spends on BEGIN alone, which on a busy machine is a good
// part of a short transaction. fn's error (or first's) rolls back; otherwise it commits.
func BeginWith(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch, first func(pgx.BatchResults) error, fn func(pgx.Tx) error) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	tx := &pipelinedTx{conn: c.Conn(), commit: "COMMIT", rollback: "ROLLBACK"}
	all := &pgx.Batch{}
	all.Queue("BEGIN")
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	br := c.SendBatch(ctx, all)
	_, err = br.Exec()
	if err == nil {
		err = first(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fn(tx)
	}
	if err != nil {
		// A failed ROLLBACK leaves the connection in a transaction: close it rather than
		// hand it back to the pool.
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil {
			_ = c.Conn().Close(context.WithoutCancel(ctx))
		}
		return err
	}
	return tx.Commit(ctx)
}

// pipelinedTx is the transaction BeginWith opened on conn: pgx's own Tx, minus the BEGIN
// it would send. Begin nests a savepoint, as pgx's does.
type pipelinedTx struct {
	conn             *pgx.Conn
	commit, rollback string
	depth            int
	done             bool
}

var errTxDone = errors.New("db: the transaction has ended")

func (t *pipelinedTx) end(ctx context.Context, sql string) error {
	if t.done {
		return errTxDone
	}
	t.done = true
	_, err := t.conn.Exec(ctx, sql)
	return err
}

func (t *pipelinedTx) Commit(ctx context.Context) error   { return t.end(ctx, t.commit) }
func (t *pipelinedTx) Rollback(ctx context.Context) error { return t.end(ctx, t.rollback) }

func (t *pipelinedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if t.done {
		return nil, errTxDone
	}
	sp := "sp_" + strconv.Itoa(t.depth+1)
	if _, err := t.conn.Exec(ctx, "SAVEPOINT "+sp); err != nil {
		return nil, err
	}
	return &pipelinedTx{conn: t.conn, commit: "RELEASE SAVEPOINT " + sp, rollback: "ROLLBACK TO SAVEPOINT " + sp, depth: t.depth + 1}, nil
}

func (t *pipelinedTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return t.conn.CopyFrom(ctx, table, cols, src)
}
func (t *pipelinedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.conn.SendBatch(ctx, b)
}

// LargeObjects is not offered: nothing of ours stores large objects.
func (t *pipelinedTx) LargeObjects() pgx.LargeObjects {
	panic("db: large objects are not supported here")
}
func (t *pipelinedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.conn.Prepare(ctx, name, sql)
}
func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.conn.Exec(ctx, sql, args...)
}
func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.conn.Query(ctx, sql, args...)
}
func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.conn.QueryRow(ctx, sql, args...)
}
func (t *pipelinedTx) Conn() *pgx.Conn { return t.conn }
