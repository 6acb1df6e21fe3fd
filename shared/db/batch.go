package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// ErrRowMoved: the guarded update of a SendGuarded batch changed no row: the row was not
// in the state its holder read under lock (a bug, or a write that bypassed the lock).
var ErrRowMoved = errors.New("db: the locked row changed under its lock")

// SendGuarded sends b inside tx in one round trip. Its first statement must be the
// version-guarded update of a row the caller holds locked; if that changed anything but
// exactly one row, the batch fails with ErrRowMoved (and tx must roll back). Otherwise it
// returns the first statement error, as a *pgconn.PgError when the database refused.
func SendGuarded(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err == nil && tag.RowsAffected() != 1 {
		err = ErrRowMoved
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}
