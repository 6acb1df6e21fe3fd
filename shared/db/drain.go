package db

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Pool is what Drain needs of a connection pool (a *pgxpool.Pool).
type Pool interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Pending is a sequencer's check for work: a cheap EXISTS query and its arguments.
type Pending struct {
	SQL  string
	Args []any
}

// Drain is the loop of a sequencer: committed rows wait for one worker at a time to put
// them in order (the audit chain's sealer, the blacklist's version numbering). While
// work says there is work, it runs step in a transaction of its own under the
// transaction-scoped advisory lock lockKey, so sequencers anywhere take turns; step
// handles up to batch rows and says how many. It stops when a step handled fewer, and
// returns the total. The pending check runs outside any transaction and lock: it is all
// most calls (a reader, an idle tick) cost.
func Drain(ctx context.Context, pool Pool, lockKey int64, work Pending, batch int, step func(pgx.Tx) (int, error)) (int, error) {
	total := 0
	for {
		var pending bool
		if err := pool.QueryRow(ctx, work.SQL, work.Args...).Scan(&pending); err != nil || !pending {
			return total, err
		}
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
				return err
			}
			var err error
			n, err = step(tx)
			return err
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}
