package photoaudit

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/workday"
)

// RunResult says what a scheduled run did.
type RunResult struct {
	Date      string `json:"date"` // China-time day of the run
	Overdue   int    `json:"overdue"`
	MessageID string `json:"messageId,omitempty"` // the SMSRequested id, when one was sent
	// Outcome: "sent", "none-overdue", "already-ran" (today's run happened: nothing new),
	// or "non-working-day" (no alert on days off; the next working day reports them).
	Outcome        string `json:"outcome"`
	CalendarCovers bool   `json:"calendarCovers"`
}

// Run is the scheduled alert for the China-time day of now: count the photos overdue by
// the configured threshold and, when there are any, ask sms-alert (outbox, same
// transaction) to tell the contact group. The day's run is recorded in the same
// transaction, so a rerun that day — the hourly schedule, a retried trigger, a concurrent
// one, which waits on the row — sends nothing new.
func (s *Service) Run(ctx context.Context, now time.Time) (RunResult, error) {
	today := workday.DateOf(now)
	cal, err := s.Calendar(ctx)
	if err != nil {
		return RunResult{}, err
	}
	res := RunResult{Date: today.String(), CalendarCovers: cal.Covers(today.Year())}
	if !res.CalendarCovers {
		s.Log.Warn("photo-audit: the working-day calendar has no entry for this year; holidays count as working days until an administrator adds them",
			"year", today.Year())
	}
	if !cal.IsWorkingDay(today) {
		res.Outcome = "non-working-day"
		return res, nil
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO photo_audit_runs (run_date, overdue) VALUES ($1, 0)
			ON CONFLICT (run_date) DO NOTHING`, today.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var msg *string
			if err := tx.QueryRow(ctx, `SELECT overdue, message_id FROM photo_audit_runs WHERE run_date = $1`,
				today.String()).Scan(&res.Overdue, &msg); err != nil {
				return err
			}
			res.Outcome = "already-ran"
			if msg != nil {
				res.MessageID = *msg
			}
			return nil
		}
		rep, err := s.count(ctx, tx, cal, Query{AsOf: today, Threshold: s.Config.Threshold})
		if err != nil {
			return err
		}
		res.Overdue, res.Outcome = rep.Total, "none-overdue"
		var msg *string
		if rep.Total > 0 {
			ev, err := s.alert(today, rep.Total)
			if err != nil {
				return err
			}
			if err := outbox.Enqueue(ctx, tx, Producer, "", ev); err != nil {
				return err
			}
			id := ev.ID()
			msg, res.MessageID, res.Outcome = &id, id, "sent"
		}
		if _, err := tx.Exec(ctx, `UPDATE photo_audit_runs SET overdue = $2, message_id = $3 WHERE run_date = $1`,
			today.String(), rep.Total, msg); err != nil {
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Actor: "system", Channel: "schedule", Action: "photo-audit.alert",
			ObjectType: "photo-audit-run", ObjectID: today.String(),
			Detail: map[string]string{"overdue": strconv.Itoa(rep.Total), "threshold": strconv.Itoa(s.Config.Threshold),
				"outcome": res.Outcome}})
		return err
	})
	if err != nil {
		return RunResult{}, err
	}
	return res, nil
}

// alert is the day's SMSRequested. Its id is the message id, one per China-time day, so
// the outbox and sms-alert both see a repeat as the same message.
func (s *Service) alert(day workday.Date, n int) (ev event.Event, err error) {
	id := MessagePrefix + day.String()
	ev, err = events.New(events.SMSRequested, Source, id, events.SMSRequestedData{
		MessageID: id, Template: Template, Params: map[string]string{ParamCount: strconv.Itoa(n)},
		RecipientRef: s.Config.Recipient, Purpose: events.PurposeAlert})
	if err != nil {
		return ev, errors.Join(errors.New("photo-audit: build the alert event"), err)
	}
	ev.SetID(id)
	return ev, nil
}
