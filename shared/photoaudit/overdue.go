package photoaudit

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/workday"
)

// Query selects overdue photos (004 §3(22)): as of a China-time day, waiting more than
// Threshold working days, optionally of one provider.
type Query struct {
	AsOf      workday.Date
	Threshold int
	Provider  string // "" = every provider
}

// Check validates q and fills the defaults: today and the configured threshold.
func (s *Service) Check(q *Query, now time.Time) error {
	if q.AsOf.IsZero() {
		q.AsOf = workday.DateOf(now)
	}
	if q.Threshold == 0 {
		q.Threshold = s.Config.Threshold
	}
	if q.Threshold < 1 || q.Threshold > workday.MaxThreshold {
		return invalid("threshold", "want whole working days from 1 to 250")
	}
	if q.Provider != "" && !providerName.MatchString(q.Provider) {
		return invalid("provider", "not a provider name")
	}
	return nil
}

// ProviderCount is the overdue count of one provider.
type ProviderCount struct {
	Provider string `json:"provider"`
	Overdue  int    `json:"overdue"`
}

// Report answers a Query.
type Report struct {
	AsOf      string          `json:"asOf"`
	Threshold int             `json:"threshold"`
	Provider  string          `json:"provider,omitempty"`
	Cutoff    time.Time       `json:"submittedBefore"` // photos submitted before this instant are overdue
	Providers []ProviderCount `json:"providers"`
	Total     int             `json:"total"`
	// CalendarCovers is false when the working-day calendar has no entry in AsOf's year:
	// its holidays are then counted as working days.
	CalendarCovers bool `json:"calendarCovers"`
}

// Pending photos submitted before the cutoff: one range scan of photo_audit_pending,
// index-only, grouped by its included provider.
const (
	countSQL = `SELECT provider, count(*) FROM photo_audit_clock
		WHERE audited_at IS NULL AND submitted_at IS NOT NULL AND submitted_at < $1
		GROUP BY provider ORDER BY provider`
	countOneSQL = `SELECT provider, count(*) FROM photo_audit_clock
		WHERE audited_at IS NULL AND submitted_at IS NOT NULL AND submitted_at < $1 AND provider = $2
		GROUP BY provider`
)

// Overdue counts per provider and in total. Every configured provider is listed, with 0
// when none of its photos is overdue.
func (s *Service) Overdue(ctx context.Context, q Query) (Report, error) {
	cal, err := s.Calendar(ctx)
	if err != nil {
		return Report{}, err
	}
	var r Report
	err = pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		r, err = s.count(ctx, tx, cal, q)
		return err
	})
	return r, err
}

// count runs in tx without parallel workers: the scan covers the pending photos only (a
// few hundred thousand index entries at 10M photos), which one process reads faster than
// workers start (8.8x faster in make bench-photoaudit; docs/photo-audit-alert.md).
func (s *Service) count(ctx context.Context, tx pgx.Tx, cal *workday.Calendar, q Query) (Report, error) {
	cut, err := cal.Cutoff(q.AsOf, q.Threshold)
	if err != nil {
		return Report{}, invalid("threshold", err.Error())
	}
	r := Report{AsOf: q.AsOf.String(), Threshold: q.Threshold, Provider: q.Provider, Cutoff: cut.UTC(),
		Providers: []ProviderCount{}, CalendarCovers: cal.Covers(q.AsOf.Year())}
	sql, args := countSQL, []any{cut}
	if q.Provider != "" {
		sql, args = countOneSQL, append(args, q.Provider)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return Report{}, err
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return Report{}, err
	}
	got := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return Report{}, err
		}
		got[p] = n
		r.Total += n
	}
	if err := rows.Err(); err != nil {
		return Report{}, err
	}
	names := s.Config.Providers()
	if q.Provider != "" {
		names = []string{q.Provider}
	}
	for _, p := range names {
		r.Providers = append(r.Providers, ProviderCount{Provider: p, Overdue: got[p]})
		delete(got, p)
	}
	// Providers no longer configured may still have photos waiting: list them too.
	rest := make([]string, 0, len(got))
	for p := range got {
		rest = append(rest, p)
	}
	sort.Strings(rest)
	for _, p := range rest {
		r.Providers = append(r.Providers, ProviderCount{Provider: p, Overdue: got[p]})
	}
	return r, nil
}
