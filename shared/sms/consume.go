package sms

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
)

// Groups the consumed events alert (RecipientRef "group:<name>").
const (
	GroupFinance = "finance-staff"
)

// Consume turns a consumed event into SMS records inside the inbox transaction tx (see
// runtime.Router.OnEvent): a redelivered event is skipped by the inbox, and a repeated
// message id by the records' unique key.
func (s *Service) Consume(ctx context.Context, tx pgx.Tx, ev event.Event) error {
	req, ok, err := s.request(ctx, tx, ev)
	if err != nil || !ok {
		return err
	}
	req.SourceEvent = ev.Source() + "#" + ev.ID()
	_, err = s.Enqueue(ctx, tx, req)
	return err
}

// request maps an event to the SMS it asks for; ok is false when it asks for none.
func (s *Service) request(ctx context.Context, tx pgx.Tx, ev event.Event) (Request, bool, error) {
	switch events.Type(ev.Type()) {
	case events.SMSRequested:
		var d events.SMSRequestedData
		if err := ev.DataAs(&d); err != nil {
			return Request{}, false, err
		}
		return Request{MessageID: d.MessageID, Template: d.Template, Params: d.Params, RecipientRef: d.RecipientRef,
			Purpose: d.Purpose}, true, nil
	case events.PhotoAudited:
		// The applicant is told the outcome, with the reason to fix a rejected photo.
		var d events.PhotoAuditedData
		if err := ev.DataAs(&d); err != nil {
			return Request{}, false, err
		}
		personID, err := lookupPerson(ctx, tx, `SELECT person_id FROM applications WHERE application_id = $1`, d.ApplicationID)
		if err != nil || personID == "" {
			return Request{}, false, err
		}
		return Request{MessageID: fmt.Sprintf("%s:photo-audit:%s", d.ApplicationID, d.AuditedAt.UTC().Format("20060102T150405.000000")),
			Template: "card.photo." + string(d.Result), Params: map[string]string{"reason": d.Reason},
			RecipientRef: personID, Purpose: events.PurposeNotice}, true, nil
	case events.CardStatusChanged:
		// The holder hears of every status change of the card (a loss report made by
		// someone else is how fraud is noticed).
		var d events.CardStatusChangedData
		if err := ev.DataAs(&d); err != nil {
			return Request{}, false, err
		}
		personID, err := lookupPerson(ctx, tx, `SELECT person_id FROM cards WHERE card_id = $1`, d.CardID)
		if err != nil || personID == "" {
			return Request{}, false, err
		}
		return Request{MessageID: fmt.Sprintf("%s:status:%d", d.CardID, d.StatusVersion), Template: "card.status.changed",
			Params: map[string]string{"from": d.From, "to": d.To}, RecipientRef: personID, Purpose: events.PurposeNotice}, true, nil
	case events.DiscrepancyFound:
		var d events.DiscrepancyFoundData
		if err := ev.DataAs(&d); err != nil {
			return Request{}, false, err
		}
		return Request{MessageID: fmt.Sprintf("%s:%s:%s", d.RunID, d.Kind, d.TxnRef), Template: "reconcile.discrepancy",
			Params: map[string]string{"businessDate": string(d.BusinessDate), "kind": discrepancyWords[d.Kind],
				"amount": Yuan(d.AmountFen), "txnRef": d.TxnRef},
			RecipientRef: GroupPrefix + GroupFinance, Purpose: events.PurposeAlert}, true, nil
	}
	return Request{}, false, fmt.Errorf("sms: no SMS for event type %s", ev.Type())
}

var discrepancyWords = map[events.DiscrepancyKind]string{
	events.DiscrepancyLong: "长款", events.DiscrepancyShort: "短款",
	events.DiscrepancyAmountMismatch: "金额不符", events.DiscrepancyStatusMismatch: "状态不符",
}

// lookupPerson returns the person of an application or card, "" when it has none (a
// card issued before the register knew its holder): then nobody can be told.
func lookupPerson(ctx context.Context, tx pgx.Tx, sql, id string) (string, error) {
	var p *string
	err := tx.QueryRow(ctx, sql, id).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) || p == nil {
		return "", nil
	}
	return *p, err
}
