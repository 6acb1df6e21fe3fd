// Package audit appends to the tamper-evident audit log: who did what to which record,
// from which channel — never the personal data itself.
//
// Each sealed entry of audit_log carries its chain position pos and hash = SM3(prev_hash ‖
// canonical entry), where prev_hash is the hash of the entry before it in the chain (32
// zero bytes for the first) and the canonical entry is its fields, seq and time included,
// length-prefixed. Writers append without a lock, inside their own transactions; a
// sealer links committed entries into the chain after commit (seal.go), so writers never
// wait for each other. Every CheckpointEvery entries (and on demand) the hash of the
// newest entry is signed with the SM2 audit key into audit_checkpoints. Verify walks the
// chain and reports the first broken link: an edited entry, a deleted, inserted or moved
// one, a checkpoint that does not match, or one whose signature fails.
//
// A chain alone does not stop someone with write access recomputing every hash after an
// edit; the signed checkpoints do (the key is not in the database), and copying them out
// of the database (WORM bucket, time-stamp authority) bounds what a full rewrite could hide.
package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/gm"
)

// Secret names.
const (
	// SecretSignKey is the SM2 checkpoint-signing key (PKCS#8 PEM).
	SecretSignKey = "audit-sign-key"
	// SecretPublicKey is its public half (PKIX PEM), all audit-verify needs.
	SecretPublicKey = "audit-sign-public-key"
)

// Entry is one audit record.
type Entry struct {
	Seq        int64 // insertion id (a gap is a rolled-back transaction)
	Pos        int64 // chain position, set when sealed (0: not yet)
	At         time.Time
	Actor      string // operator id, app id, kiosk id, "system"
	Channel    string // h5, outlet, kiosk, bank, admin, schedule, event
	Action     string // e.g. "card.loss.report"
	ObjectType string // e.g. "card"
	ObjectID   string // an opaque record id, never an ID number or phone number
	RequestID  string
	Detail     map[string]string // small, non-personal facts ("from": "active", "to": "lost")
	PrevHash   []byte
	Hash       []byte
}

// ErrLooksLikePII: a field holds something shaped like a resident ID number or a mobile
// number. The error does not repeat the value.
var ErrLooksLikePII = errors.New("audit: a field looks like an ID number or a phone number; audit entries never carry PII")

var genesis = make([]byte, gm.SM3Size)

// canonical is the hashed form of e (without the hashes).
func canonical(e *Entry) []byte {
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"audit/v1", strconv.FormatInt(e.Seq, 10), strconv.FormatInt(e.At.UnixMicro(), 10), e.Actor,
		e.Channel, e.Action, e.ObjectType, e.ObjectID, e.RequestID, strconv.Itoa(len(keys))}
	for _, k := range keys {
		parts = append(parts, k, e.Detail[k])
	}
	return gm.LengthPrefixed(parts...)
}

func chainHash(prev []byte, e *Entry) []byte {
	h := gm.SM3(prev, canonical(e))
	return h[:]
}

// Digit runs shaped like a resident ID (15 or 18 characters), or a mainland mobile with
// or without 86, standing alone (not inside a longer alphanumeric token).
var piiShape = regexp.MustCompile(`(^|[^0-9A-Za-z])(\d{17}[\dXx]|\d{15}|(\+?86|0086)?1[3-9]\d{9})($|[^0-9A-Za-z])`)

func checkText(name, v string, required bool) error {
	switch {
	case required && v == "":
		return fmt.Errorf("audit: %s is required", name)
	case len(v) > 512:
		return fmt.Errorf("audit: %s longer than 512 bytes", name)
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		return fmt.Errorf("audit: %s is not valid text", name)
	case digitRun(v) >= 11 && piiShape.MatchString(v):
		return fmt.Errorf("%w (%s)", ErrLooksLikePII, name)
	}
	return nil
}

// digitRun is the longest run of ASCII digits in v. Every piiShape match holds a run of
// at least 11 (a mobile number), so most text (ids, codes, reasons) is cleared without
// the regular expression, which was a twentieth of a card change's CPU.
func digitRun(v string) int {
	longest, run := 0, 0
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

func (e *Entry) validate() error {
	for _, f := range []struct {
		name, v  string
		required bool
	}{{"actor", e.Actor, true}, {"channel", e.Channel, true}, {"action", e.Action, true},
		{"object type", e.ObjectType, true}, {"object id", e.ObjectID, true}, {"request id", e.RequestID, false}} {
		if err := checkText(f.name, f.v, f.required); err != nil {
			return err
		}
	}
	if len(e.Detail) > 32 {
		return errors.New("audit: more than 32 detail members")
	}
	for k, v := range e.Detail {
		if err := checkText("detail key", k, true); err != nil {
			return err
		}
		if err := checkText("detail "+k, v, false); err != nil {
			return err
		}
	}
	return nil
}

// lockKey is the advisory lock one sealer holds while it links entries ("sscard.audit_log").
const lockKey int64 = 0x5353434152444155

// Log appends entries and seals them into the chain.
type Log struct {
	// Signer signs checkpoints (audit-sign-key); without it no automatic checkpoints.
	Signer crypto.Signer
	// CheckpointEvery: the sealer writes a checkpoint when this many entries have been
	// sealed since the last one (default 1000; negative: never).
	CheckpointEvery int64
	Now             func() time.Time

	wake wakeup // appends in this process wake its sealer (seal.go)
	// The sealer's floor timing (SealGrace, SealSweep when zero); tests shorten it.
	sealGrace, sealSweep time.Duration
}

// Append writes e in a transaction of its own and seals it, returning it with seq, time,
// chain position and hashes.
func (l *Log) Append(ctx context.Context, pool db.Pool, e Entry) (Entry, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer tx.Rollback(ctx)
	out, err := l.AppendTx(ctx, tx, e)
	if err != nil {
		return Entry{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Entry{}, err
	}
	if _, err := l.Seal(ctx, pool); err != nil {
		return Entry{}, err
	}
	sealed, err := l.entry(ctx, pool, out.Seq)
	if err != nil {
		return Entry{}, err
	}
	return sealed, nil
}

// AppendTx writes e inside tx, so the entry commits (or rolls back) with the change it
// records. It takes no lock: the entry is unsealed until a sealer links it into the chain
// after commit (RunSealer in every function instance, woken by this append). The returned
// entry has its seq and time but no position or hashes yet.
func (l *Log) AppendTx(ctx context.Context, tx pgx.Tx, e Entry) (Entry, error) {
	sql, args, err := l.insert(&e)
	if err != nil {
		return Entry{}, err
	}
	if err := tx.QueryRow(ctx, sql+` RETURNING seq`, args...).Scan(&e.Seq); err != nil {
		return Entry{}, err
	}
	l.wake.appended()
	return e, nil
}

// Queue is AppendTx as a statement added to b, for a caller that sends its transaction's
// writes in one round trip; b must be sent inside that transaction.
func (l *Log) Queue(b *pgx.Batch, e Entry) error {
	sql, args, err := l.insert(&e)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	l.wake.appended()
	return nil
}

// insert validates e, stamps its time and returns the statement that writes it unsealed.
func (l *Log) insert(e *Entry) (string, []any, error) {
	if err := e.validate(); err != nil {
		return "", nil, err
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	e.At = now().UTC().Truncate(time.Microsecond)
	if e.Detail == nil {
		e.Detail = map[string]string{}
	}
	var rid *string
	if e.RequestID != "" {
		rid = &e.RequestID
	}
	return `INSERT INTO audit_log (at, actor, channel, action, object_type, object_id, request_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		[]any{e.At, e.Actor, e.Channel, e.Action, e.ObjectType, e.ObjectID, rid, e.Detail}, nil
}

// Checkpoint is a signed statement of the chain's hash at chain position Pos.
type Checkpoint struct {
	Pos       int64
	Hash      []byte
	At        time.Time
	KeyID     string
	Signature []byte
}

func (c *Checkpoint) message() []byte {
	return fmt.Appendf(nil, "sscard-audit-checkpoint/v1\n%d\n%x\n%d\n%s\n", c.Pos, c.Hash, c.At.UnixMicro(), c.KeyID)
}

type execQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (l *Log) writeCheckpoint(ctx context.Context, db execQuerier, pos int64, hash []byte, at time.Time) (*Checkpoint, error) {
	pub, ok := l.Signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("audit: signer is not an SM2 key")
	}
	c := &Checkpoint{Pos: pos, Hash: hash, At: at, KeyID: gm.KeyID(pub)}
	sig, err := gm.Sign(l.Signer, c.message())
	if err != nil {
		return nil, err
	}
	c.Signature = sig
	_, err = db.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (seq) DO NOTHING`, c.Pos, c.Hash, c.At, c.KeyID, c.Signature)
	return c, err
}

// Checkpoint seals what is pending and signs the newest sealed entry now (a scheduled job
// or audit-verify -checkpoint calls it; the sealer also does every CheckpointEvery
// entries). It returns nil when the log is empty.
func (l *Log) Checkpoint(ctx context.Context, pool db.Pool) (*Checkpoint, error) {
	if l.Signer == nil {
		return nil, errors.New("audit: no signing key")
	}
	if _, err := l.Seal(ctx, pool); err != nil {
		return nil, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return nil, err
	}
	var pos int64
	var hash []byte
	var at time.Time
	err = tx.QueryRow(ctx, `SELECT pos, hash, at FROM audit_log WHERE pos IS NOT NULL ORDER BY pos DESC LIMIT 1`).Scan(&pos, &hash, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := l.writeCheckpoint(ctx, tx, pos, hash, at.UTC())
	if err != nil {
		return nil, err
	}
	return c, tx.Commit(ctx)
}

// Break is the first broken link Verify found: the entry at chain position Pos (seq Seq;
// 0 when the position names no entry).
type Break struct {
	Pos    int64
	Seq    int64
	Reason string
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at position %d (seq %d): %s", b.Pos, b.Seq, b.Reason)
}

// Report is the result of Verify.
type Report struct {
	Entries     int64 // sealed entries walked
	Checkpoints int
	LastPos     int64
	LastSeq     int64
	LastHash    []byte
	// Pending entries are committed but not sealed yet (normally for well under a second;
	// OldestPending tells how long the oldest has waited). They are not part of the chain
	// until sealed, so Verify does not judge them.
	Pending       int64
	OldestPending time.Time
	Broken        *Break // nil when the chain is intact
}

// Querier runs queries (a pool, a connection or a transaction).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Verify walks the whole chain in position order and checks every link, every entry hash
// and every checkpoint (signature by one of keys, and hash at its position). It stops at
// the first broken link. An error is returned only when the database cannot be read.
func Verify(ctx context.Context, db Querier, keys ...*ecdsa.PublicKey) (*Report, error) {
	cps, err := loadCheckpoints(ctx, db)
	if err != nil {
		return nil, err
	}
	byID := map[string]*ecdsa.PublicKey{}
	for _, k := range keys {
		byID[gm.KeyID(k)] = k
	}
	r := &Report{Checkpoints: len(cps)}
	var oldest *time.Time
	if err := db.QueryRow(ctx, `SELECT count(*), min(at) FROM audit_log WHERE pos IS NULL`).Scan(&r.Pending, &oldest); err != nil {
		return nil, err
	}
	if oldest != nil {
		r.OldestPending = oldest.UTC()
	}
	// The first problem by position wins, whether it is an entry or a checkpoint signature.
	badSig := map[int64]string{}
	for _, c := range cps {
		pub := byID[c.KeyID]
		switch {
		case pub == nil:
			badSig[c.Pos] = "checkpoint signed by an unknown key " + c.KeyID
		case !gm.Verify(pub, c.message(), c.Signature):
			badSig[c.Pos] = "checkpoint signature does not verify"
		}
	}
	byPos := map[int64]*Checkpoint{}
	for i := range cps {
		byPos[cps[i].Pos] = &cps[i]
	}

	rows, err := db.Query(ctx, `SELECT pos, seq, at, actor, channel, action, object_type, object_id, coalesce(request_id, ''),
		detail, prev_hash, hash FROM audit_log WHERE pos IS NOT NULL ORDER BY pos`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	prev := genesis
	seen := map[int64]bool{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Pos, &e.Seq, &e.At, &e.Actor, &e.Channel, &e.Action, &e.ObjectType, &e.ObjectID, &e.RequestID,
			&e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		r.Entries++
		r.LastPos, r.LastSeq = e.Pos, e.Seq
		fail := func(reason string) (*Report, error) {
			r.Broken = &Break{Pos: e.Pos, Seq: e.Seq, Reason: reason}
			return r, nil
		}
		switch {
		case len(e.Hash) != gm.SM3Size:
			return fail("entry has no valid hash (written outside the chain)")
		case !bytes.Equal(e.PrevHash, prev):
			return fail("entry does not link to the entry before it: an entry was deleted, inserted or moved")
		case !bytes.Equal(chainHash(prev, &e), e.Hash):
			return fail("entry content does not match its hash: the entry was edited")
		}
		if c, ok := byPos[e.Pos]; ok {
			if reason, bad := badSig[e.Pos]; bad {
				return fail(reason)
			}
			if !bytes.Equal(c.Hash, e.Hash) {
				return fail("the chain does not match the signed checkpoint: entries up to here were rewritten")
			}
			seen[e.Pos] = true
		}
		prev = e.Hash
		r.LastHash = e.Hash
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, c := range cps {
		if !seen[c.Pos] {
			r.Broken = &Break{Pos: c.Pos, Reason: "a signed checkpoint names an entry that is missing: entries were deleted"}
			return r, nil
		}
	}
	return r, nil
}

func loadCheckpoints(ctx context.Context, db Querier) ([]Checkpoint, error) {
	rows, err := db.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		if err := rows.Scan(&c.Pos, &c.Hash, &c.At, &c.KeyID, &c.Signature); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
