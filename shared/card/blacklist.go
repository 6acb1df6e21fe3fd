package card

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/db"
)

// The blacklist is the set of card numbers terminals must refuse: cards under temporary
// or formal loss, and cancelled cards. Every status change is one blacklist change, which
// gets the next version when sequenced (see Sequence): "add" when the card's new status
// is listed (again, for a loss made formal or a lost card cancelled — the entry's status
// changes), "remove" when it is normal again (unlock, lapse). A cancelled card stays
// listed for good.
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

// blacklistLock is the advisory lock of the sequencer ("sscard.blacklist").
const blacklistLock int64 = 0x53534341524442

// sequenceBatch is the most changes one sequencing transaction numbers.
const sequenceBatch = 1000

// Sequence numbers the committed blacklist changes that have no version yet, in the order
// they were recorded, and applies them to the listed cards and the current version, all
// in one transaction under the sequencer lock. A status change only inserts its change
// row, so changes of different cards never wait for each other; every reader of the
// blacklist sequences first, so the version it reports covers every change committed
// before it asked. (Changes of one card are recorded in order under the card's row lock,
// so they are numbered in order too.) It returns how many changes it numbered.
func (s *Service) Sequence(ctx context.Context) (int, error) {
	return db.Drain(ctx, s.Pool, blacklistLock, db.Pending{SQL: `SELECT EXISTS (SELECT 1 FROM blacklist_changes WHERE version IS NULL)`},
		sequenceBatch, func(tx pgx.Tx) (int, error) { return s.sequenceBatch(ctx, tx) })
}

type pendingChange struct {
	ID     int64
	CardID string
	CardNo string
	Op     string
	Status Status
	At     time.Time
}

// sequenceBatch numbers up to sequenceBatch pending changes under the sequencer lock.
func (s *Service) sequenceBatch(ctx context.Context, tx pgx.Tx) (int, error) {
	rows, err := tx.Query(ctx, `SELECT change_id, card_id, card_no, op, status, at FROM blacklist_changes
		WHERE version IS NULL ORDER BY change_id LIMIT $1`, sequenceBatch)
	if err != nil {
		return 0, err
	}
	changes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pendingChange])
	if err != nil || len(changes) == 0 {
		return 0, err
	}
	var version int64
	if err := tx.QueryRow(ctx, `SELECT version FROM blacklist_meta FOR UPDATE`).Scan(&version); err != nil {
		return 0, err
	}
	ids := make([]int64, len(changes))
	versions := make([]int64, len(changes))
	newest := map[string]int{} // card number → index of its newest change in this batch
	for i, c := range changes {
		version++
		ids[i], versions[i] = c.ID, version
		newest[c.CardNo] = i
	}
	var removed, addNo, addID, addStatus []string
	var addVersion []int64
	var addAt []time.Time
	for no, i := range newest {
		c := changes[i]
		if c.Op == "add" {
			addNo, addID, addStatus = append(addNo, no), append(addID, c.CardID), append(addStatus, string(c.Status))
			addVersion, addAt = append(addVersion, versions[i]), append(addAt, c.At)
		} else {
			removed = append(removed, no)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE blacklist_changes c SET version = u.version
		FROM unnest($1::bigint[], $2::bigint[]) AS u(id, version) WHERE c.change_id = u.id`, ids, versions)
	b.Queue(`DELETE FROM blacklist_entries WHERE card_no = ANY($1)`, removed)
	b.Queue(`INSERT INTO blacklist_entries (card_no, card_id, status, version, since)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
		ON CONFLICT (card_no) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version`,
		addNo, addID, addStatus, addVersion, addAt)
	b.Queue(`UPDATE blacklist_meta SET version = $1`, version)
	return len(changes), tx.SendBatch(ctx, b).Close()
}

// readOnly runs fn in a REPEATABLE READ read-only transaction: one consistent view of the
// counter and the tables, whatever commits meanwhile.
func (s *Service) readOnly(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// settle brings the blacklist up to now before it is read: expired temporary losses
// lapse, and every committed change is numbered.
func (s *Service) settle(ctx context.Context) error {
	if _, err := s.Lapse(ctx, s.now()); err != nil {
		return err
	}
	_, err := s.Sequence(ctx)
	return err
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
	if err := s.settle(ctx); err != nil {
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
	if err := s.settle(ctx); err != nil {
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
	if _, err := s.Sequence(ctx); err != nil {
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
