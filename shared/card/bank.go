package card

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
)

// Bank is the card's bank (002 二(二)1(9)⑧: loss and unlock are synchronised with the
// bank that runs the card's financial account). Banks publish no common interface; this
// is the contract an adapter meets:
//
//   - Notify tells the bank that card CardNo now has status code ToCode, as of the card's
//     change number StatusVersion. RequestID identifies the change: a bank acknowledges a
//     repeated request again, with the same reference, and changes nothing.
//   - A bank that cannot take the request now returns an error (ErrBankUnavailable or
//     any other); the event is then redelivered by the broker until the bank takes it.
//   - Changes may arrive out of order (retries); the bank keeps the one with the highest
//     StatusVersion.
type Bank interface {
	Name() string
	Notify(ctx context.Context, c BankChange) (BankAck, error)
}

// BankChange is one status change told to a bank.
type BankChange struct {
	RequestID        string
	CardNo           string
	FromCode, ToCode string
	StatusVersion    int64
	ChangedAt        time.Time
}

// BankAck is a bank's acknowledgement.
type BankAck struct {
	Ref       string
	Duplicate bool // the bank had acknowledged this request before
}

// ErrBankUnavailable: the bank refused or could not be reached; retry later.
var ErrBankUnavailable = errors.New("card: the bank is unavailable")

// ErrBadEvent: a status-change event that can never be applied (invalid, or naming an
// unknown card); redelivering it will not help.
var ErrBadEvent = errors.New("card: the event cannot be applied")

// SyncBank is the consumer of CardStatusChanged: it tells the bank and records the
// acknowledgement. It runs inside the inbox transaction tx (so a redelivered event that
// was acknowledged and recorded is skipped); the bank call itself is outside tx and
// idempotent on the event, so a crash between the bank's acknowledgement and the commit
// only makes the bank acknowledge the same request again.
func (s *Service) SyncBank(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	d, err := events.Decode[events.CardStatusChangedData](ev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	var cardNo string
	err = tx.QueryRow(ctx, `SELECT card_no FROM cards WHERE card_id = $1`, d.CardID).Scan(&cardNo)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: no card %s", ErrBadEvent, d.CardID)
	}
	if err != nil {
		return err
	}
	if s.Bank == nil {
		return errors.New("card: no bank adapter configured")
	}
	ack, err := s.Bank.Notify(ctx, BankChange{RequestID: ev.ID(), CardNo: cardNo, FromCode: d.From, ToCode: d.To,
		StatusVersion: d.StatusVersion, ChangedAt: d.ChangedAt})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO bank_sync_acks (bank, event_source, event_id, card_id, status_code,
			status_version, ack_ref, acked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		s.Bank.Name(), ev.Source(), ev.ID(), d.CardID, d.To, d.StatusVersion, ack.Ref, s.now())
	return err
}

// SimulatedBank is the built-in stand-in for a card bank (development and tests). It
// keeps its state in Postgres (bank_sim_* tables): the requests it acknowledged and each
// card's status as it knows it. SetFailing makes it refuse every call until cleared, so
// retries can be exercised end to end.
type SimulatedBank struct {
	Pool *pgxpool.Pool
	Now  func() time.Time
}

// SimulatedBankName names it in bank_sync_acks and bank_sim_control.
const SimulatedBankName = "simulated"

func (b *SimulatedBank) Name() string { return SimulatedBankName }

// Notify implements Bank.
func (b *SimulatedBank) Notify(ctx context.Context, c BankChange) (BankAck, error) {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	var ack BankAck
	var refused bool
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		// A refusal is counted (and committed) so tests can watch the retries.
		tag, err := tx.Exec(ctx, `UPDATE bank_sim_control SET refused = refused + 1 WHERE bank = $1 AND failing`,
			SimulatedBankName)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			refused = true
			return nil
		}
		var deliveries int
		if err := tx.QueryRow(ctx, `INSERT INTO bank_sim_requests (request_id, card_no, status_code, status_version,
				ack_ref, received_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (request_id) DO UPDATE SET deliveries = bank_sim_requests.deliveries + 1
			RETURNING ack_ref, deliveries`,
			c.RequestID, c.CardNo, c.ToCode, c.StatusVersion, "SIMBANK-"+uuid.NewString(), now()).
			Scan(&ack.Ref, &deliveries); err != nil {
			return err
		}
		ack.Duplicate = deliveries > 1
		if ack.Duplicate {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO bank_sim_cards (card_no, status_code, status_version, updated_at)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (card_no) DO UPDATE SET status_code = EXCLUDED.status_code,
				status_version = EXCLUDED.status_version, updated_at = EXCLUDED.updated_at
			WHERE bank_sim_cards.status_version < EXCLUDED.status_version`,
			c.CardNo, c.ToCode, c.StatusVersion, now())
		return err
	})
	if err != nil {
		return BankAck{}, err
	}
	if refused {
		return BankAck{}, fmt.Errorf("%w: the simulated bank is set to fail", ErrBankUnavailable)
	}
	return ack, nil
}

// SetFailing makes the simulated bank refuse (true) or accept (false) calls.
func (b *SimulatedBank) SetFailing(ctx context.Context, failing bool) error {
	_, err := b.Pool.Exec(ctx, `UPDATE bank_sim_control SET failing = $2 WHERE bank = $1`, SimulatedBankName, failing)
	return err
}

// BankCard is a card as the simulated bank knows it.
type BankCard struct {
	CardNo        string `json:"cardNo"`
	StatusCode    string `json:"statusCode"`
	StatusVersion int64  `json:"statusVersion"`
	Requests      int    `json:"requests"`   // distinct requests acknowledged for the card
	Deliveries    int    `json:"deliveries"` // all deliveries, repeats included
}

// Card returns what the simulated bank knows of cardNo (ErrNotFound: nothing).
func (b *SimulatedBank) Card(ctx context.Context, cardNo string) (BankCard, error) {
	c := BankCard{CardNo: cardNo}
	err := b.Pool.QueryRow(ctx, `SELECT c.status_code, c.status_version,
			(SELECT count(*) FROM bank_sim_requests r WHERE r.card_no = c.card_no),
			(SELECT coalesce(sum(deliveries), 0) FROM bank_sim_requests r WHERE r.card_no = c.card_no)
		FROM bank_sim_cards c WHERE c.card_no = $1`, cardNo).Scan(&c.StatusCode, &c.StatusVersion, &c.Requests, &c.Deliveries)
	if errors.Is(err, pgx.ErrNoRows) {
		return BankCard{}, ErrNotFound
	}
	return c, err
}
