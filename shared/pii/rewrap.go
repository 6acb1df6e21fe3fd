package pii

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Column names an encrypted column and the primary-key column whose text form
// (key::text) is the Row of its values' Field.
type Column struct {
	Table  string // as used in Field.Table; may be schema-qualified ("public.people")
	Column string
	Key    string
}

var ident = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ParseColumn reads "table.column:key" (or "schema.table.column:key").
func ParseColumn(s string) (Column, error) {
	tc, key, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(tc, '.')
	if !ok || i < 0 {
		return Column{}, fmt.Errorf("column %q: want table.column:key", s)
	}
	c := Column{Table: tc[:i], Column: tc[i+1:], Key: key}
	for _, id := range append(strings.Split(c.Table, "."), c.Column, c.Key) {
		if !ident.MatchString(id) {
			return Column{}, fmt.Errorf("column %q: %q is not a plain lower-case identifier", s, id)
		}
	}
	return c, nil
}

func (c Column) sql() (table, col, key string) {
	return pgx.Identifier(strings.Split(c.Table, ".")).Sanitize(), pgx.Identifier{c.Column}.Sanitize(), pgx.Identifier{c.Key}.Sanitize()
}

// Beginner starts transactions (a *pgxpool.Pool).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// RewrapStats reports one column's rewrap.
type RewrapStats struct {
	Rewrapped int
	// Failed are the keys of rows whose value did not decrypt (wrong row, tampered,
	// retired key, or not a pii1 value at all); they are left as they are.
	Failed []string
}

// RewrapColumn re-encrypts every value of column c that is not under the active KEK
// version, in transactions of batch rows locked with FOR UPDATE SKIP LOCKED (so it can
// run beside the functions, and in several copies).
func RewrapColumn(ctx context.Context, db Beginner, k *Keyring, c Column, batch int) (RewrapStats, error) {
	var st RewrapStats
	if _, err := ParseColumn(c.Table + "." + c.Column + ":" + c.Key); err != nil {
		return st, err
	}
	if batch <= 0 {
		batch = 500
	}
	table, col, key := c.sql()
	current := prefix + strconv.Itoa(k.ActiveVersion()) + ":%"
	sel := fmt.Sprintf(`SELECT ctid, %[2]s::text, %[3]s FROM %[1]s
		WHERE %[3]s IS NOT NULL AND %[3]s NOT LIKE $1 AND NOT (%[2]s::text = ANY($2))
		LIMIT $3 FOR UPDATE SKIP LOCKED`, table, key, col)
	upd := fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE ctid = $2`, table, col)
	for {
		n, err := rewrapBatch(ctx, db, k, c, sel, upd, current, batch, &st)
		if err != nil {
			return st, err
		}
		if n == 0 {
			return st, nil
		}
	}
}

func rewrapBatch(ctx context.Context, db Beginner, k *Keyring, c Column, sel, upd, current string, batch int, st *RewrapStats) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	failed := st.Failed
	if failed == nil {
		failed = []string{}
	}
	rows, err := tx.Query(ctx, sel, current, failed, batch)
	if err != nil {
		return 0, err
	}
	type row struct {
		tid      pgtype.TID
		key, val string
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tid, &r.key, &r.val); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range todo {
		nv, err := k.Rewrap(ctx, Field{Table: c.Table, Column: c.Column, Row: r.key}, r.val)
		if errors.Is(err, ErrDecrypt) {
			st.Failed = append(st.Failed, r.key)
			continue
		}
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, upd, nv, r.tid); err != nil {
			return 0, err
		}
		st.Rewrapped++
	}
	return len(todo), tx.Commit(ctx)
}

// Querier runs queries (a pool or a transaction).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// CountVersions counts the values of column c by KEK version; version 0 counts values
// that are not pii1 ciphertexts.
func CountVersions(ctx context.Context, db Querier, c Column) (map[int]int, error) {
	if _, err := ParseColumn(c.Table + "." + c.Column + ":" + c.Key); err != nil {
		return nil, err
	}
	table, col, _ := c.sql()
	rows, err := db.Query(ctx, fmt.Sprintf(`SELECT CASE WHEN %[2]s ~ '^pii1:[0-9]+:' THEN split_part(%[2]s, ':', 2)::int ELSE 0 END,
		count(*) FROM %[1]s WHERE %[2]s IS NOT NULL GROUP BY 1`, table, col))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var v, n int
		if err := rows.Scan(&v, &n); err != nil {
			return nil, err
		}
		out[v] = n
	}
	return out, rows.Err()
}

// RetireVersion marks the DEKs of KEK versions up to v as retired: they are never used
// for new values again. Decryption of values still under them fails once the KEK line is
// removed; check CountVersions first (pii-rewrap -retire does).
func RetireVersion(ctx context.Context, db DB, v int) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE pii_data_keys SET retired_at = now() WHERE kek_version <= $1 AND retired_at IS NULL`, v)
	return tag.RowsAffected(), err
}
