package photoaudit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/workday"
)

// Service is the photo-audit clock, alert, query and export.
type Service struct {
	Pool   *pgxpool.Pool
	People *person.Store // decrypts names and ID numbers for the export only
	Audit  *audit.Log
	Config Config
	Log    *slog.Logger
}

// Actor is the signed staff caller of a query, export or calendar change.
type Actor struct {
	ID        string // callsign app id
	RequestID string
}

// InputError names the fields of a request that cannot be carried out.
type InputError struct{ Fields map[string]string }

func (e *InputError) Error() string { return fmt.Sprintf("invalid input: %v", e.Fields) }

func invalid(field, reason string) error {
	return &InputError{Fields: map[string]string{field: reason}}
}

// ErrNotFound: no calendar entry on that day.
var ErrNotFound = errors.New("photo-audit: not found")

// Calendar loads the working-day calendar (a few dozen rows a year).
func (s *Service) Calendar(ctx context.Context) (*workday.Calendar, error) {
	rows, err := s.Pool.Query(ctx, `SELECT day, kind, name FROM workday_calendar ORDER BY day`)
	if err != nil {
		return nil, err
	}
	var days []workday.Day
	for rows.Next() {
		var d time.Time
		var kind, name string
		if err := rows.Scan(&d, &kind, &name); err != nil {
			return nil, err
		}
		days = append(days, workday.Day{Date: workday.NewDate(d.Year(), d.Month(), d.Day()), Kind: workday.Kind(kind), Name: name})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return workday.NewCalendar(days)
}

// SetDay adds or replaces the calendar entry of d.Date, recorded in the audit chain.
func (s *Service) SetDay(ctx context.Context, d workday.Day, a Actor) error {
	if err := d.Check(); err != nil {
		return invalid("kind", err.Error())
	}
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO workday_calendar (day, kind, name, updated_by, updated_at)
			VALUES ($1, $2, $3, $4, now()) ON CONFLICT (day) DO UPDATE SET kind = excluded.kind, name = excluded.name,
			updated_by = excluded.updated_by, updated_at = now()`, d.Date.String(), string(d.Kind), d.Name, a.ID); err != nil {
			return err
		}
		_, err := s.Audit.AppendTx(ctx, tx, audit.Entry{Actor: a.ID, Channel: "admin", Action: "workday.calendar.set",
			ObjectType: "workday-calendar", ObjectID: d.Date.String(), RequestID: a.RequestID,
			Detail: map[string]string{"kind": string(d.Kind), "name": d.Name}})
		return err
	})
}

// RemoveDay deletes the entry of day (ErrNotFound when there is none), audited.
func (s *Service) RemoveDay(ctx context.Context, day workday.Date, a Actor) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var kind string
		err := tx.QueryRow(ctx, `DELETE FROM workday_calendar WHERE day = $1 RETURNING kind`, day.String()).Scan(&kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Actor: a.ID, Channel: "admin", Action: "workday.calendar.remove",
			ObjectType: "workday-calendar", ObjectID: day.String(), RequestID: a.RequestID,
			Detail: map[string]string{"kind": kind}})
		return err
	})
}
