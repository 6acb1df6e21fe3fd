package db

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A guard is a statement of a batch that fails, server-side, when a condition its writer
// relied on does not hold (migration 009: sscard_expect raises SQLSTATE SSG01 naming the
// guard). The batch's later statements are then not run, and its transaction (explicit,
// or the implicit one of a batch sent without BEGIN) rolls back: so a change can read
// without a lock, decide, and send its guarded writes with the commit in one round trip.

// guardCode is the SQLSTATE sscard_expect raises.
const guardCode = "SSG01"

var guardName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func checkName(name string) {
	// Names go into the SQL text as literals: only a plain word may.
	if !guardName.MatchString(name) {
		panic("db: guard name must be lower-case letters, digits and dashes: " + name)
	}
}

// GuardOne wraps an UPDATE (without RETURNING) into a guard that fails unless it changed
// exactly one row: the version-guarded update of a row read before.
func GuardOne(name, update string) string {
	checkName(name)
	return `WITH g AS (` + update + ` RETURNING 1) SELECT sscard_expect(count(*) = 1, '` + name + `') FROM g`
}

// Guard is a guard on a boolean SQL condition (which may take the statement's parameters).
func Guard(name, cond string) string { return GuardAll(Cond{Name: name, SQL: cond}) }

// Cond is a named condition of GuardAll.
type Cond struct{ Name, SQL string }

// GuardAll is one statement guarding every condition, checked in order (the first that
// fails is the one named): one statement where several would each cost a round of the
// executor.
func GuardAll(conds ...Cond) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		checkName(c.Name)
		parts[i] = `sscard_expect(` + c.SQL + `, '` + c.Name + `')`
	}
	return `SELECT ` + strings.Join(parts, ", ")
}

// GuardError is a guard that failed; Guard names it.
type GuardError struct{ Guard string }

func (e *GuardError) Error() string { return "db: guard " + e.Guard + " failed" }

// FailedGuard returns the name of the guard whose failure err is, or "".
func FailedGuard(err error) string {
	var ge *GuardError
	if errors.As(err, &ge) {
		return ge.Guard
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == guardCode {
		return pe.Detail
	}
	return ""
}

// Sender sends a batch: a transaction, a connection or a pool (without a transaction
// the batch runs as one implicit transaction).
type Sender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// SendGuarded sends b in one round trip and reads every result. A failed guard is
// returned as a *GuardError; any other failure as the first statement error (a
// *pgconn.PgError when the database refused). Sent on a pool or connection, b commits or
// rolls back as a whole; inside a transaction, the caller must roll back on error.
func SendGuarded(ctx context.Context, s Sender, b *pgx.Batch) error {
	err := s.SendBatch(ctx, b).Close()
	if name := FailedGuard(err); name != "" {
		return &GuardError{Guard: name}
	}
	return err
}
