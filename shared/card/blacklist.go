package card

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The blacklist is the set of card numbers terminals must refuse: cards under temporary
// or formal loss, and cancelled cards. Every status change is one blacklist change with
// the next version: "add" when the card's new status is listed (again, for a loss made
// formal or a lost card cancelled — the entry's status changes), "remove" when it is
// normal again (unlock, lapse). A cancelled card stays listed for good.
//
// Terminals keep (version, set). They start from Snapshot, then apply Delta(version)
// repeatedly: adds join the set, removes leave it. Delta collapses several changes of one
// card within the answer to the newest, so applying it in any order is the same.

// Entry is one card in a delta or snapshot.
type Entry struct {
	CardNo     string `json:"cardNo"`
	Status     Status `json:"status"`
	StatusCode string `json:"statusCode"`
	Version    int64  `json:"version"` // the version of the change that put it here
}

// Delta is the answer to "what changed after version Since".
type Delta struct {
	Since int64 `json:"since"`
	// Version is the version this answer brings the caller to: ask next with since=Version.
	Version int64 `json:"version"`
	// Current is the newest version; More says Version < Current (the answer was limited).
	Current int64 `json:"currentVersion"`
	More    bool  `json:"more"`
	// SnapshotRequired: Since is older than the changes kept (compacted) or newer than
	// Current (a caller from another database); take a Snapshot and go on from its version.
	SnapshotRequired bool `json:"snapshotRequired"`
	// Oldest is the oldest since that deltas can still answer.
	Oldest  int64   `json:"oldestSince"`
	Adds    []Entry `json:"adds"`
	Removes []Entry `json:"removes"`
}

// Snapshot is the whole blacklist at Version.
type Snapshot struct {
	Version int64   `json:"version"`
	Count   int     `json:"count"`
	Cards   []Entry `json:"cards"`
}

// Check is the real-time answer for one card.
type Check struct {
	CardNo           string `json:"cardNo"`
	Listed           bool   `json:"listed"`
	Status           Status `json:"status"`
	StatusCode       string `json:"statusCode"`
	BlacklistVersion int64  `json:"blacklistVersion"` // the current version of the blacklist
}

// DefaultDeltaLimit and MaxDeltaLimit bound the changes one Delta reads.
const (
	DefaultDeltaLimit = 1000
	MaxDeltaLimit     = 10000
)

// change is one row of blacklist_changes.
type blChange struct {
	Version int64
	CardNo  string
	Op      string
	Status  Status
}

// collapse reduces changes (in version order) to the newest per card, split into adds
// and removes, each sorted by card number.
func collapse(changes []blChange, codes Codes) (adds, removes []Entry) {
	last := map[string]blChange{}
	for _, c := range changes {
		if prev, ok := last[c.CardNo]; !ok || c.Version > prev.Version {
			last[c.CardNo] = c
		}
	}
	adds, removes = []Entry{}, []Entry{}
	for _, c := range last {
		e := Entry{CardNo: c.CardNo, Status: c.Status, StatusCode: codes.Code(c.Status), Version: c.Version}
		if c.Op == "add" {
			adds = append(adds, e)
		} else {
			removes = append(removes, e)
		}
	}
	byNo := func(es []Entry) {
		sort.Slice(es, func(i, j int) bool { return es[i].CardNo < es[j].CardNo })
	}
	byNo(adds)
	byNo(removes)
	return adds, removes
}

// readOnly runs fn in a REPEATABLE READ read-only transaction: one consistent view of the
// counter and the tables, whatever commits meanwhile.
func (s *Service) readOnly(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// Delta returns the changes after version since, at most limit of them (0: the default),
// collapsed per card. Expired temporary losses are lapsed first.
func (s *Service) Delta(ctx context.Context, since int64, limit int) (Delta, error) {
	if since < 0 {
		return Delta{}, invalid("since", "want a version, 0 or more")
	}
	if limit == 0 {
		limit = DefaultDeltaLimit
	}
	if limit < 1 || limit > MaxDeltaLimit {
		return Delta{}, invalid("limit", "want 1 to 10000")
	}
	if _, err := s.Lapse(ctx, s.now()); err != nil {
		return Delta{}, err
	}
	d := Delta{Since: since, Adds: []Entry{}, Removes: []Entry{}}
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version, compacted_through FROM blacklist_meta`).Scan(&d.Current, &d.Oldest); err != nil {
			return err
		}
		if since < d.Oldest || since > d.Current {
			d.SnapshotRequired, d.Version = true, d.Current
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT version, card_no, op, status FROM blacklist_changes
			WHERE version > $1 ORDER BY version LIMIT $2`, since, limit)
		if err != nil {
			return err
		}
		changes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[blChange])
		if err != nil {
			return err
		}
		d.Version = d.Current
		if len(changes) == limit {
			d.Version = changes[len(changes)-1].Version
		}
		d.More = d.Version < d.Current
		d.Adds, d.Removes = collapse(changes, s.Config.Codes)
		return nil
	})
	return d, err
}

// Snapshot returns every listed card and the version it is complete at. Expired
// temporary losses are lapsed first.
func (s *Service) Snapshot(ctx context.Context) (Snapshot, error) {
	if _, err := s.Lapse(ctx, s.now()); err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Cards: []Entry{}}
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version FROM blacklist_meta`).Scan(&snap.Version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT card_no, status, version FROM blacklist_entries ORDER BY card_no`)
		if err != nil {
			return err
		}
		snap.Cards, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
			var e Entry
			err := row.Scan(&e.CardNo, &e.Status, &e.Version)
			e.StatusCode = s.Config.Codes.Code(e.Status)
			return e, err
		})
		return err
	})
	snap.Count = len(snap.Cards)
	return snap, err
}

// Check answers whether cardNo is listed now (an expired temporary loss is lapsed first).
func (s *Service) Check(ctx context.Context, cardNo string) (Check, error) {
	no := strings.ToUpper(strings.TrimSpace(cardNo))
	if !ValidCardNo(no) {
		return Check{}, invalid("cardNo", "want a card number (a letter and 8 digits)")
	}
	c, err := s.Get(ctx, no)
	if err != nil {
		return Check{}, err
	}
	out := Check{CardNo: c.No, Listed: c.Listed, Status: c.Status, StatusCode: c.StatusCode}
	err = s.Pool.QueryRow(ctx, `SELECT version FROM blacklist_meta`).Scan(&out.BlacklistVersion)
	return out, err
}

// Compact deletes the blacklist changes recorded before now minus the retention (and any
// older versions), and moves the point before which deltas need a snapshot. It returns
// how many changes it deleted.
func (s *Service) Compact(ctx context.Context, now time.Time) (int64, error) {
	cutoff := now.Add(-s.Config.BlacklistRetention)
	var deleted int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var through int64
		var upTo *int64
		if err := tx.QueryRow(ctx, `SELECT compacted_through FROM blacklist_meta FOR UPDATE`).Scan(&through); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT max(version) FROM blacklist_changes WHERE at < $1`, cutoff).Scan(&upTo); err != nil {
			return err
		}
		if upTo == nil || *upTo <= through {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM blacklist_changes WHERE version <= $1`, *upTo)
		if err != nil {
			return err
		}
		deleted = tag.RowsAffected()
		_, err = tx.Exec(ctx, `UPDATE blacklist_meta SET compacted_through = $1`, *upTo)
		return err
	})
	return deleted, err
}
