package application

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
)

// Factory is the card producer (制卡厂, with the bank account opening and personalisation
// it arranges) together with the carrier (EMS) that mails the card. Neither has a public
// API; SimFactory is the local implementation. Every method runs inside the transaction
// that records the application's transition, so a simulated step and the transition
// commit together.
type Factory interface {
	// List records a submitted application in the producer's application list (申领名单,
	// saveCardSqList). Repeating it is harmless.
	List(ctx context.Context, tx pgx.Tx, appID string, at time.Time) error
	// Start puts an application with an approved photo into production and returns the
	// batch number and the card number (社保卡号, AAZ500) the card will carry.
	Start(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (batchNo, cardNo string, err error)
	// Ship hands the finished card to the carrier and returns the waybill number.
	Ship(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (waybillNo string, err error)
	// Delivered reports whether the carrier has delivered the card.
	Delivered(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (bool, error)
}

// SimFactory simulates the producer and EMS with state in sim_card_production: a card
// is made and shipped as soon as it is asked for, and a shipped card is delivered on the
// next Advance. Card numbers are "S" and 8 digits; waybills are UPU S10 numbers
// ("EA" + 8 digits + check digit + "CN") as EMS uses.
type SimFactory struct{}

// List implements Factory.
func (SimFactory) List(ctx context.Context, tx pgx.Tx, appID string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO sim_card_production (application_id, stage, listed_at, updated_at)
		VALUES ($1, 'listed', $2, $2) ON CONFLICT (application_id) DO NOTHING`, appID, at)
	return err
}

// Start implements Factory. An application the producer has not listed yet (its event not
// yet delivered) is listed now.
func (f SimFactory) Start(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (string, string, error) {
	if err := f.List(ctx, tx, appID, at); err != nil {
		return "", "", err
	}
	batch := "SIM" + at.In(events.ChinaTime).Format("20060102")
	var cardNo string
	err := tx.QueryRow(ctx, `UPDATE sim_card_production SET stage = 'in_production', batch_no = $2,
			card_no = coalesce(card_no, 'S' || lpad(nextval('sim_card_no_seq')::text, 8, '0')), updated_at = $3
		WHERE application_id = $1 AND stage IN ('listed', 'in_production') RETURNING card_no`, appID, batch, at).Scan(&cardNo)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fmt.Errorf("simulated producer: application %s is past production", appID)
	}
	return batch, cardNo, err
}

// Ship implements Factory.
func (SimFactory) Ship(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (string, error) {
	var n int64
	if err := tx.QueryRow(ctx, `SELECT nextval('sim_waybill_seq')`).Scan(&n); err != nil {
		return "", err
	}
	waybill := S10("EA", n%100_000_000, "CN")
	tag, err := tx.Exec(ctx, `UPDATE sim_card_production SET stage = 'shipped', waybill_no = $2, updated_at = $3
		WHERE application_id = $1 AND stage = 'in_production'`, appID, waybill, at)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("simulated producer: application %s is not in production", appID)
	}
	return waybill, err
}

// Delivered implements Factory: a shipped card is delivered when asked.
func (SimFactory) Delivered(ctx context.Context, tx pgx.Tx, appID string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE sim_card_production SET stage = 'delivered', updated_at = $2
		WHERE application_id = $1 AND stage IN ('shipped', 'delivered')`, appID, at)
	return err == nil && tag.RowsAffected() == 1, err
}

// S10 formats a UPU S10 item identifier: 2-letter service indicator, 8-digit serial,
// check digit (weights 8 6 4 2 3 5 9 7; 11 − sum mod 11, 10 → 0, 11 → 5), 2-letter country.
func S10(service string, serial int64, country string) string {
	digits := fmt.Sprintf("%08d", serial)
	weights := [8]int{8, 6, 4, 2, 3, 5, 9, 7}
	sum := 0
	for i, w := range weights {
		sum += int(digits[i]-'0') * w
	}
	c := 11 - sum%11
	switch c {
	case 10:
		c = 0
	case 11:
		c = 5
	}
	return fmt.Sprintf("%s%s%d%s", service, digits, c, country)
}

// OnSubmitted is card-apply's consumer of ApplicationSubmitted: the producer lists the
// application (申领名单). It runs in the inbox transaction, so redelivery is a no-op.
func (s *Service) OnSubmitted(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	var d events.ApplicationSubmittedData
	if err := ev.DataAs(&d); err != nil {
		return err
	}
	return s.Factory.List(ctx, tx, d.ApplicationID, s.now())
}

// Advanced counts the applications Advance moved, by the state they reached.
type Advanced struct {
	InProduction int `json:"inProduction"`
	Mailed       int `json:"mailed"`
	Delivered    int `json:"delivered"`
}

// Advance moves applications one step each along production: photo_approved →
// in_production (batch, card number), in_production → mailed (waybill), mailed →
// delivered, at most limit per step, oldest first. Each application moves in a
// transaction of its own; applications locked by another caller are skipped. It is what
// the admin route and a schedule call.
func (s *Service) Advance(ctx context.Context, limit int, actor Actor) (Advanced, error) {
	if limit <= 0 {
		limit = 100
	}
	if actor.ID == "" {
		actor.ID = "system"
	}
	if actor.Channel == "" {
		actor.Channel = "schedule"
	}
	var out Advanced
	// Later steps first, so that one call moves an application by one step only.
	for _, step := range []struct {
		from Status
		n    *int
	}{{Mailed, &out.Delivered}, {InProduction, &out.Mailed}, {PhotoApproved, &out.InProduction}} {
		rows, err := s.Pool.Query(ctx, `SELECT application_id FROM applications WHERE status = $1
			ORDER BY status_since LIMIT $2`, step.from, limit)
		if err != nil {
			return out, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return out, err
		}
		for _, id := range ids {
			moved, err := s.advanceOne(ctx, id, step.from, actor)
			if err != nil {
				return out, err
			}
			if moved {
				*step.n++
			}
		}
	}
	return out, nil
}

func (s *Service) advanceOne(ctx context.Context, id string, from Status, actor Actor) (bool, error) {
	moved := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		a, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM applications WHERE application_id = $1
			FOR UPDATE SKIP LOCKED`, id))
		if errors.Is(err, ErrNotFound) {
			return nil // someone else is moving it
		}
		if err != nil || a.Status != from {
			return err
		}
		at := s.now()
		c := change{actor: actor}
		switch from {
		case PhotoApproved:
			c.action = ActProduce
			if c.batch, c.cardNo, err = s.Factory.Start(ctx, tx, a.ID, at); err != nil {
				return err
			}
		case InProduction:
			c.action = ActMail
			if c.waybill, err = s.Factory.Ship(ctx, tx, a.ID, at); err != nil {
				return err
			}
		case Mailed:
			c.action = ActDeliver
			ok, err := s.Factory.Delivered(ctx, tx, a.ID, at)
			if err != nil || !ok {
				return err
			}
		}
		to, _ := Next(a.Status, c.action)
		params := map[string]string{}
		if c.waybill != "" {
			params["waybillNo"] = c.waybill
			params["carrier"] = "EMS"
		}
		ev, err := notice(&a, to, params)
		if err != nil {
			return err
		}
		c.events = []event.Event{ev}
		if err := s.transition(ctx, tx, &a, c, at); err != nil {
			return err
		}
		moved = true
		return nil
	})
	return moved, err
}
