package card

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/outbox"
)

// Producer is the outbox producer (the function whose relay delivers the events) and
// Source the CloudEvents source of CardStatusChanged.
const (
	Producer = "loss-report"
	Source   = "/functions/loss-report"
)

// ErrNotFound: no card with this id or number.
var ErrNotFound = errors.New("card: no such card")

// ErrCardExists: a card with this number exists already.
var ErrCardExists = errors.New("card: a card with this number exists")

// Service carries out status changes and answers status and blacklist queries.
type Service struct {
	Pool   *pgxpool.Pool
	Config Config
	// Audit appends the audit entry of each change (a Log without signer when nil).
	Audit *audit.Log
	// Bank receives status changes (SyncBank).
	Bank Bank
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) audit() *audit.Log {
	if s.Audit != nil {
		return s.Audit
	}
	return &audit.Log{}
}

// Card is a card's state as callers see it.
type Card struct {
	ID                string     `json:"cardId"`
	No                string     `json:"cardNo"`
	PersonID          string     `json:"-"` // opaque, but not shown to unauthenticated callers
	Status            Status     `json:"status"`
	StatusCode        string     `json:"statusCode"` // the province's code (AAZ502)
	Since             time.Time  `json:"statusSince"`
	TempLossExpiresAt *time.Time `json:"temporaryLossExpiresAt,omitempty"`
	Listed            bool       `json:"listed"`
	// Version numbers the card's status changes (the history seq of the newest); events
	// and the bank carry it as statusVersion.
	Version int64 `json:"version"`
	// BankSyncedVersion is the newest change the bank has acknowledged; the bank is in
	// step when it equals Version.
	BankSyncedVersion int64 `json:"bankSyncedVersion"`

	// replacement is card-apply's open replacement of the card, read with the row lock.
	replacement openReplacement
}

// openReplacement is an application replacing a card that is not activated or withdrawn
// yet ("" id: none).
type openReplacement struct{ id, status string }

// Request asks for a status change.
type Request struct {
	Card             string // card id ("card-…") or card number
	Action           Action
	Channel          Channel
	Reason           string // one of Reasons(); a default per action when empty
	IdentityVerified bool   // the caller asserts it verified the holder (see Transition.Identity)
	Actor            string // operator or app id; "caller:<channel>" when empty
	RequestID        string
}

// Result is a change carried out.
type Result struct {
	Card     Card    `json:"card"`
	Action   Action  `json:"action"`
	From     Status  `json:"from"`
	FromCode string  `json:"fromCode"`
	Channel  Channel `json:"channel"`
	Reason   string  `json:"reason"`
	EventID  string  `json:"eventId"`
}

func (r *Request) normalise() error {
	var bad []FieldError
	if r.Action == ActLapse || !knownAction(r.Action) {
		bad = append(bad, FieldError{"action", "want one of " + join(Actions())})
	}
	if !slices.Contains(Channels(), r.Channel) {
		bad = append(bad, FieldError{"channel", "want one of " + join(Channels())})
	}
	if r.Reason == "" {
		r.Reason = defaultReason(r.Action)
	} else if !validReason(r.Reason) {
		bad = append(bad, FieldError{"reason", "want one of " + strings.Join(reasons, ", ")})
	}
	if r.Actor == "" {
		r.Actor = "caller:" + string(r.Channel)
	} else if !actorShape.MatchString(r.Actor) {
		bad = append(bad, FieldError{"operator", "want an opaque operator id of 1 to 64 letters, digits or ._:@-"})
	}
	if len(bad) > 0 {
		return &InputError{Fields: bad}
	}
	return nil
}

// ref is a resolved {card}: by id or by number.
type ref struct {
	column, value string
}

// parseRef accepts a card id ("card-<uuid>") or a card number (a letter and 8 digits,
// case-insensitive).
func parseRef(s string) (ref, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, idPrefix) {
		if _, err := uuid.Parse(s[len(idPrefix):]); err == nil {
			return ref{"card_id", s}, nil
		}
	} else if no := strings.ToUpper(s); ValidCardNo(no) {
		return ref{"card_no", no}, nil
	}
	return ref{}, invalid("card", "want a card id (card-<uuid>) or a card number (a letter and 8 digits)")
}

const cardColumns = `card_id, card_no, coalesce(person_id, ''), status, status_since, temp_loss_expires_at, version`

func (s *Service) scanCard(row pgx.Row, extra ...any) (Card, error) {
	var c Card
	err := row.Scan(append([]any{&c.ID, &c.No, &c.PersonID, &c.Status, &c.Since, &c.TempLossExpiresAt, &c.Version},
		extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Card{}, ErrNotFound
	}
	if err != nil {
		return Card{}, err
	}
	s.decorate(&c)
	return c, nil
}

func (s *Service) decorate(c *Card) {
	c.StatusCode = s.Config.Codes.Code(c.Status)
	c.Listed = c.Status.Listed()
	c.Since = c.Since.UTC()
	if c.TempLossExpiresAt != nil {
		t := c.TempLossExpiresAt.UTC()
		c.TempLossExpiresAt = &t
	}
}

// lock reads the card for update: concurrent changes of one card wait here, in turn.
func (s *Service) lock(ctx context.Context, tx pgx.Tx, r ref) (Card, error) {
	return s.scanRead(tx.QueryRow(ctx, readSQL(r)+` FOR UPDATE OF cards`, r.value))
}

// readSQL reads one card and its open replacement (card-apply's applications, migration
// 008: the one fact of that capability the card rules need).
func readSQL(r ref) string {
	return `SELECT ` + cardColumns + `, coalesce(open_app, ''), coalesce(open_app_status, '')
		FROM cards LEFT JOIN LATERAL (SELECT application_id AS open_app, status AS open_app_status FROM applications
			WHERE replaces_card_id = cards.card_id AND status NOT IN ('activated', 'withdrawn') LIMIT 1) r ON true
		WHERE cards.` + r.column + ` = $1`
}

// readCardSQL is readSQL without the open replacement (scanRead sees none).
func readCardSQL(r ref) string {
	return `SELECT ` + cardColumns + `, '', '' FROM cards WHERE ` + r.column + ` = $1`
}

func (s *Service) scanRead(row pgx.Row) (Card, error) {
	var open openReplacement
	c, err := s.scanCard(row, &open.id, &open.status)
	c.replacement = open
	return c, err
}

// NewCard creates a card.
type NewCard struct {
	CardNo    string
	PersonID  string // optional
	Actor     string // "admin" when empty
	Channel   string // where it was issued; "admin" when empty
	RequestID string
}

// Create records an issued card, in status normal, in a transaction of its own.
func (s *Service) Create(ctx context.Context, n NewCard) (Card, error) {
	var c Card
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		c, err = s.CreateTx(ctx, tx, n)
		return err
	})
	if err != nil {
		return Card{}, err
	}
	return c, nil
}

// CreateTx records an issued card inside tx (READ COMMITTED), in status normal: the card,
// its history row seq 0 and an audit entry. No event: nothing changed status and the
// blacklist is untouched. Card issuance belongs to card-apply, which can call this in the
// transaction that activates the card; POST /cards is the stand-in until it does.
func (s *Service) CreateTx(ctx context.Context, tx pgx.Tx, n NewCard) (Card, error) {
	var bad []FieldError
	no := strings.ToUpper(strings.TrimSpace(n.CardNo))
	if !ValidCardNo(no) {
		bad = append(bad, FieldError{"cardNo", "want a capital letter and 8 digits, e.g. B00000019"})
	}
	if n.PersonID != "" && !personIDShape.MatchString(n.PersonID) {
		bad = append(bad, FieldError{"personId", "want an opaque person id"})
	}
	if n.Actor == "" {
		n.Actor = "admin"
	} else if !actorShape.MatchString(n.Actor) {
		bad = append(bad, FieldError{"operator", "want an opaque operator id of 1 to 64 letters, digits or ._:@-"})
	}
	if n.Channel == "" {
		n.Channel = "admin"
	} else if !actorShape.MatchString(n.Channel) {
		bad = append(bad, FieldError{"channel", "want a channel name"})
	}
	if len(bad) > 0 {
		return Card{}, &InputError{Fields: bad}
	}
	at := s.now()
	c := Card{ID: idPrefix + uuid.NewString(), No: no, PersonID: n.PersonID, Status: Normal, Since: at}
	var person *string
	if n.PersonID != "" {
		person = &n.PersonID
	}
	// A failed insert must not abort the caller's transaction: try it under a savepoint.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return Card{}, err
	}
	if _, err := sp.Exec(ctx, `INSERT INTO cards (card_id, card_no, person_id, status, status_since, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5, $5)`, c.ID, c.No, person, c.Status, at); err != nil {
		_ = sp.Rollback(ctx)
		if db.UniqueViolation(err, "") {
			return Card{}, ErrCardExists
		}
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23503" {
			return Card{}, invalid("personId", "no such person")
		}
		return Card{}, err
	}
	if err := sp.Commit(ctx); err != nil {
		return Card{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO card_status_history (card_id, seq, from_status, to_status, action, channel,
		reason, actor, at, request_id) VALUES ($1, 0, NULL, $2, $3, $4, 'issued', $5, $6, $7)`,
		c.ID, c.Status, ActIssue, n.Channel, n.Actor, at, nullable(n.RequestID)); err != nil {
		return Card{}, err
	}
	if _, err := s.audit().AppendTx(ctx, tx, audit.Entry{Actor: n.Actor, Channel: n.Channel, Action: "card.issue",
		ObjectType: "card", ObjectID: c.ID, RequestID: n.RequestID,
		Detail: map[string]string{"to": string(c.Status), "toCode": s.Config.Codes.Code(c.Status)}}); err != nil {
		return Card{}, auditError(err)
	}
	s.decorate(&c)
	return c, nil
}

// Get returns the card by id or number. An expired temporary loss is lapsed first, so a
// reader never sees a loss that no longer holds.
func (s *Service) Get(ctx context.Context, cardRef string) (Card, error) {
	r, err := parseRef(cardRef)
	if err != nil {
		return Card{}, err
	}
	for range 2 {
		var synced int64
		c, err := s.scanCard(s.Pool.QueryRow(ctx, `SELECT `+cardColumns+`,
				coalesce((SELECT max(a.status_version) FROM bank_sync_acks a WHERE a.card_id = cards.card_id), 0)
			FROM cards WHERE `+r.column+` = $1`, r.value), &synced)
		if err != nil {
			return Card{}, err
		}
		c.BankSyncedVersion = synced
		if !s.due(c, s.now()) {
			return c, nil
		}
		if _, err := s.lapseOne(ctx, c.ID, s.now()); err != nil {
			return Card{}, err
		}
	}
	return Card{}, errors.New("card: lapse did not settle")
}

func (s *Service) due(c Card, now time.Time) bool { return Lapsed(c.Status, c.TempLossExpiresAt, now) }

// Lapsed reports whether a card in status with temporary-loss expiry expires has lapsed
// back to normal by now (the lapse job records it when it next runs).
func Lapsed(status Status, expires *time.Time, now time.Time) bool {
	return status == TemporaryLoss && expires != nil && !expires.After(now)
}

// Change carries out r in a transaction of its own.
//
// It first tries without a lock, which is two round trips: the card is read, the rules
// decide, and the writes go in one batch that is its own (implicit) transaction, guarded
// by the version read (and, for an unlock, by no replacement having opened since). Only
// when a guard fails (another change of the card came first) or a temporary loss is due
// to lapse does it take the card's row lock and decide again on what it then reads; so
// changes of one card still serialise, and none is lost.
func (s *Service) Change(ctx context.Context, r Request) (Result, error) {
	cr, err := r.target()
	if err != nil {
		return Result{}, err
	}
	// Without the open replacement (readCardSQL): only an unlock cares, and its guard finds
	// one (then the locked path reads it to name it).
	c, err := s.scanRead(s.Pool.QueryRow(ctx, readCardSQL(cr), cr.value))
	if err != nil {
		return Result{}, err
	}
	if !s.due(c, s.now()) {
		res, err := s.decide(ctx, s.Pool, c, r)
		if db.FailedGuard(err) == "" {
			return res, err
		}
	}
	return s.changeLocking(ctx, cr, r)
}

// changeLocking is Change under the card's row lock, taken in the round trip that begins
// the transaction (db.BeginWith).
func (s *Service) changeLocking(ctx context.Context, cr ref, r Request) (Result, error) {
	b := &pgx.Batch{}
	b.Queue(readSQL(cr)+` FOR UPDATE OF cards`, cr.value)
	var c Card
	var res Result
	err := db.BeginWith(ctx, s.Pool, b, func(br pgx.BatchResults) error {
		var err error
		c, err = s.scanRead(br.QueryRow())
		return err
	}, func(tx pgx.Tx) error {
		var err error
		res, err = s.changeLocked(ctx, tx, c, r)
		return err
	})
	if db.FailedGuard(err) == guardNoReplacement {
		// A replacement opened while this change waited for the lock (the lock's read
		// could not see it yet); read it now to name it.
		return s.changeLockingRefused(ctx, cr)
	}
	return res, err
}

// changeLockingRefused is the ReplacementUnderwayError of a card whose replacement
// opened under a change.
func (s *Service) changeLockingRefused(ctx context.Context, cr ref) (Result, error) {
	c, err := s.scanRead(s.Pool.QueryRow(ctx, readSQL(cr), cr.value))
	if err != nil {
		return Result{}, err
	}
	return Result{}, s.replacementUnderway(c)
}

// ChangeTx carries out r inside tx (READ COMMITTED): the card update, history row,
// blacklist change, audit entry and CardStatusChanged event all commit or roll back with
// tx. A temporary loss found expired is lapsed first (in tx), so the rules apply to the
// status the card really has.
func (s *Service) ChangeTx(ctx context.Context, tx pgx.Tx, r Request) (Result, error) {
	cr, err := r.target()
	if err != nil {
		return Result{}, err
	}
	c, err := s.lock(ctx, tx, cr)
	if err != nil {
		return Result{}, err
	}
	return s.changeLocked(ctx, tx, c, r)
}

// target normalises r and parses the card it names.
func (r *Request) target() (ref, error) {
	if err := r.normalise(); err != nil {
		return ref{}, err
	}
	return parseRef(r.Card)
}

// changeLocked carries out r on card c, locked in tx.
func (s *Service) changeLocked(ctx context.Context, tx pgx.Tx, c Card, r Request) (Result, error) {
	if at := s.now(); s.due(c, at) {
		if _, err := s.lapseLocked(ctx, tx, c, at); err != nil {
			return Result{}, err
		}
		var err error
		if c, err = s.lock(ctx, tx, ref{"card_id", c.ID}); err != nil {
			return Result{}, err
		}
	}
	return s.decide(ctx, tx, c, r)
}

// decide applies the rules to r on card c as read, and sends the change through tx (a
// transaction holding the card's lock, or the pool: then the change is one implicit
// transaction, and its guards stand in for the lock).
func (s *Service) decide(ctx context.Context, tx db.Sender, c Card, r Request) (Result, error) {
	at := s.now()
	to, err := Decide(c.Status, r.Action, r.Channel, r.IdentityVerified)
	if err != nil {
		var te *TransitionError
		if errors.As(err, &te) {
			te.CurrentCode = s.Config.Codes.Code(te.Current)
		}
		return Result{}, err
	}
	// Unlocking a card whose replacement is being made would leave the holder two usable
	// cards once the new one is activated.
	if r.Action == ActUnlock && c.replacement.id != "" {
		return Result{}, s.replacementUnderway(c)
	}
	return s.apply(ctx, tx, c, to, change{action: r.Action, channel: r.Channel, eventChannel: eventChannel(r.Channel),
		reason: r.Reason, actor: r.Actor, identity: r.IdentityVerified, requestID: r.RequestID, at: at, effective: at})
}

func (s *Service) replacementUnderway(c Card) error {
	open := c.replacement
	return &ReplacementUnderwayError{Current: c.Status, CurrentCode: s.Config.Codes.Code(c.Status),
		ApplicationID: open.id, Application: open.status}
}

// Guards of a change's batch (db.Guard): the card is still at the version read, and (an
// unlock) no replacement has opened since it was read.
const (
	guardVersion       = "card-version"
	guardNoReplacement = "card-no-replacement"
)

// ReplacementUnderwayError: the card may not be unlocked, since a replacement card
// (补卡) is being made for it; activating the new card cancels this one, and two usable
// cards for one holder is what the rules forbid. Withdrawing the replacement (possible
// before production) frees the card.
type ReplacementUnderwayError struct {
	Current       Status
	CurrentCode   string
	ApplicationID string
	Application   string // the replacement's status
}

func (e *ReplacementUnderwayError) Error() string {
	return fmt.Sprintf("card: a replacement (application %s, %s) is underway", e.ApplicationID, e.Application)
}

// change is what apply records.
type change struct {
	action       Action
	channel      Channel
	eventChannel events.Channel
	reason       string
	actor        string
	identity     bool
	requestID    string
	at           time.Time // when it is recorded
	effective    time.Time // when it took effect (a lapse: the expiry)
}

// apply moves card c, as read, to status to and records everything that goes with it, in
// one round trip through tx, guarded (decide).
func (s *Service) apply(ctx context.Context, tx db.Sender, c Card, to Status, ch change) (Result, error) {
	from := c.Status
	var expires *time.Time
	if to == TemporaryLoss {
		e := LossExpiry(ch.effective, s.Config.TemporaryLossDays).UTC()
		expires = &e
	}
	// The version read is guarded, so the next one is known: every write of the change goes
	// to the database in one round trip.
	c.Version++
	codes := s.Config.Codes
	ev, err := events.New(events.CardStatusChanged, Source, c.ID, events.CardStatusChangedData{
		CardID: c.ID, From: codes.Code(from), To: codes.Code(to), Reason: ch.reason, Channel: ch.eventChannel,
		ChangedAt: ch.effective, StatusVersion: c.Version,
	})
	if err != nil {
		return Result{}, err
	}
	b := &pgx.Batch{}
	b.Queue(db.GuardOne(guardVersion, `UPDATE cards SET status = $2, status_since = $3, temp_loss_expires_at = $4,
			version = $5, updated_at = $6
		WHERE card_id = $1 AND version = $5 - 1`), c.ID, to, ch.effective, expires, c.Version, ch.at)
	// The lapse job's list of temporary losses (migration 010), kept with the card.
	switch {
	case to == TemporaryLoss:
		b.Queue(`INSERT INTO card_temporary_losses (card_id, expires_at) VALUES ($1, $2)`, c.ID, expires)
	case from == TemporaryLoss:
		b.Queue(`DELETE FROM card_temporary_losses WHERE card_id = $1`, c.ID)
	}
	if ch.action == ActUnlock {
		// Checked after the update holds the row lock, which a replacement's FOR SHARE
		// (card-apply) waits for; this statement's snapshot sees one that came before.
		b.Queue(db.Guard(guardNoReplacement, `NOT EXISTS (SELECT 1 FROM applications
			WHERE replaces_card_id = $1 AND status NOT IN ('activated', 'withdrawn'))`), c.ID)
	}
	// The blacklist change gets its version when sequenced after commit (blacklist.go):
	// drawing it here would serialise every change of every card until commit.
	op := "remove"
	if to.Listed() {
		op = "add"
	}
	b.Queue(`INSERT INTO blacklist_changes (card_id, card_no, op, status, at, status_version)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.ID, c.No, op, to, ch.at, c.Version)
	b.Queue(`INSERT INTO card_status_history (card_id, seq, from_status, to_status, action, channel,
			reason, actor, identity_verified, at, request_id, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.Version, from, to, ch.action, ch.channel, ch.reason, ch.actor, ch.identity, ch.at,
		nullable(ch.requestID), ev.ID())
	auditChannel := string(ch.channel)
	if ch.channel == ChannelSystem {
		auditChannel = "schedule"
	}
	if err := s.audit().Queue(b, audit.Entry{Actor: ch.actor, Channel: auditChannel,
		Action: "card." + string(ch.action), ObjectType: "card", ObjectID: c.ID, RequestID: ch.requestID,
		Detail: map[string]string{
			"from": string(from), "to": string(to), "fromCode": codes.Code(from), "toCode": codes.Code(to),
			"reason": ch.reason, "identityVerified": strconv.FormatBool(ch.identity),
			"statusVersion": strconv.FormatInt(c.Version, 10), "eventId": ev.ID(),
		}}); err != nil {
		return Result{}, auditError(err)
	}
	if err := outbox.Queue(b, Producer, "", ev); err != nil {
		return Result{}, err
	}
	if err := db.SendGuarded(ctx, tx, b); err != nil {
		return Result{}, err
	}

	c.Status, c.Since, c.TempLossExpiresAt = to, ch.effective, expires
	s.decorate(&c)
	return Result{Card: c, Action: ch.action, From: from, FromCode: codes.Code(from), Channel: ch.channel,
		Reason: ch.reason, EventID: ev.ID()}, nil
}

// eventChannel maps our channel to the event catalog's. The catalog has no "phone" yet:
// the 12333 hotline is a staffed bureau service, so it travels as "outlet" (our history
// and audit keep "phone").
func eventChannel(c Channel) events.Channel {
	switch c {
	case ChannelOnline:
		return events.ChannelH5
	case ChannelBank:
		return events.ChannelBank
	case ChannelKiosk:
		return events.ChannelKiosk
	default:
		return events.ChannelOutlet
	}
}

// Lapse returns every temporary loss that expired at or before now to normal, each in
// a transaction of its own with the full bookkeeping (history, audit, blacklist removal,
// event). A schedule calls it; reads lapse the cards they touch. It returns how many
// cards it lapsed. Replicas may run it at the same time: each card is re-checked under
// its row lock.
func (s *Service) Lapse(ctx context.Context, now time.Time) (int, error) {
	const batch = 200
	type due struct {
		expires time.Time
		id      string
	}
	n := 0
	// Pages go on from the last card seen, so a page ends even if a card listed there
	// could not be lapsed.
	var last due
	for {
		rows, err := s.Pool.Query(ctx, `SELECT expires_at, card_id FROM card_temporary_losses
			WHERE expires_at <= $1 AND (expires_at, card_id) > ($2, $3)
			ORDER BY expires_at, card_id LIMIT $4`, now, last.expires, last.id, batch)
		if err != nil {
			return n, err
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
			var d due
			return d, r.Scan(&d.expires, &d.id)
		})
		if err != nil {
			return n, err
		}
		for _, d := range page {
			ok, err := s.lapseOne(ctx, d.id, now)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
			last = d
		}
		if len(page) < batch {
			return n, nil
		}
	}
}

func (s *Service) lapseOne(ctx context.Context, id string, now time.Time) (bool, error) {
	var done bool
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := s.lock(ctx, tx, ref{"card_id", id})
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		done, err = s.lapseLocked(ctx, tx, c, now)
		return err
	})
	return done, err
}

// lapseLocked lapses locked card c if its temporary loss expired by now. The event
// carries the channel the loss was reported on (the catalog has no "system" channel);
// history and audit say "system".
func (s *Service) lapseLocked(ctx context.Context, tx pgx.Tx, c Card, now time.Time) (bool, error) {
	if !s.due(c, now) {
		return false, nil
	}
	to, err := Decide(c.Status, ActLapse, ChannelSystem, false)
	if err != nil {
		return false, err
	}
	var reported Channel
	if err := tx.QueryRow(ctx, `SELECT channel FROM card_status_history WHERE card_id = $1 ORDER BY seq DESC LIMIT 1`,
		c.ID).Scan(&reported); err != nil {
		return false, err
	}
	_, err = s.apply(ctx, tx, c, to, change{action: ActLapse, channel: ChannelSystem, eventChannel: eventChannel(reported),
		reason: ReasonLapsed, actor: "system", at: s.now(), effective: *c.TempLossExpiresAt})
	return err == nil, err
}

// HistoryEntry is one row of a card's history.
type HistoryEntry struct {
	Seq              int64     `json:"seq"`
	From             Status    `json:"from,omitempty"`
	To               Status    `json:"to"`
	Action           Action    `json:"action"`
	Channel          string    `json:"channel"`
	Reason           string    `json:"reason"`
	Actor            string    `json:"actor"`
	IdentityVerified bool      `json:"identityVerified"`
	At               time.Time `json:"at"`
}

// History returns the card's history, oldest first.
func (s *Service) History(ctx context.Context, cardRef string) ([]HistoryEntry, error) {
	r, err := parseRef(cardRef)
	if err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT h.seq, coalesce(h.from_status, ''), h.to_status, h.action, h.channel, h.reason,
			h.actor, h.identity_verified, h.at
		FROM card_status_history h JOIN cards c ON c.card_id = h.card_id
		WHERE c.`+r.column+` = $1 ORDER BY h.seq`, r.value)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HistoryEntry, error) {
		var h HistoryEntry
		err := row.Scan(&h.Seq, &h.From, &h.To, &h.Action, &h.Channel, &h.Reason, &h.Actor, &h.IdentityVerified, &h.At)
		h.At = h.At.UTC()
		return h, err
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// auditError: the only caller-supplied text in an audit entry is the operator id, so an
// entry refused as PII-shaped is the caller's input error.
func auditError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, audit.ErrLooksLikePII) {
		return invalid("operator", "must not look like an ID or phone number")
	}
	return fmt.Errorf("card: audit: %w", err)
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
