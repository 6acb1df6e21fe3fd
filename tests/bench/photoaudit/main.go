// Command photoaudit measures the overdue photo-audit count (shared/photoaudit Overdue)
// over a table of many photos (10M by default) in a fresh database of the test Postgres:
// the function's query as the alert and the staff query run it, the bare index-only count
// under it (the floor), and the same count without the index (what the partial index
// saves). Run by `make bench-photoaudit`, which starts the test services and sources their
// settings.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/photoaudit"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/shared/workday"
	"github.com/sscard/platform/tests/testenv"
)

func main() {
	photos := flag.Int("photos", 10_000_000, "photos in the clock table")
	pending := flag.Float64("pending", 0.02, "share of photos still awaiting audit")
	runs := flag.Int("runs", 7, "timed runs of each query (the median is printed)")
	flag.Parse()
	if err := run(*photos, *pending, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench-photoaudit:", err)
		os.Exit(1)
	}
}

func run(photos int, pending float64, runs int) error {
	ctx := context.Background()
	pw, err := secrets.Reader{Dir: os.Getenv("secret_mount_path")}.Read("postgres-password")
	if err != nil {
		return fmt.Errorf("test services' secrets (make services-test, then source .state/test/env): %w", err)
	}
	dsn, drop, err := testenv.CreateDatabase(ctx, os.Getenv("postgres_dsn"), pw)
	if err != nil {
		return err
	}
	defer drop()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.ConnConfig.Password = pw
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Photos submitted evenly over the two years before the run day, five providers; the
	// audited ones were audited two days after submission.
	asOf := workday.NewDate(2026, 12, 9)
	start := time.Now()
	const chunk = 1_000_000
	for lo := 1; lo <= photos; lo += chunk {
		hi := min(lo+chunk-1, photos)
		if _, err := pool.Exec(ctx, `INSERT INTO photo_audit_clock (application_id, provider, channel, submitted_at, audited_at, result)
			SELECT 'app-' || g, (ARRAY['provider-a','provider-b','provider-c','provider-d','provider-e'])[1 + g % 5], 'h5', ts,
				CASE WHEN waiting THEN NULL ELSE ts + interval '2 days' END, CASE WHEN waiting THEN NULL ELSE 'approved' END
			FROM generate_series($1::int, $2::int) g,
				LATERAL (SELECT $5::timestamptz - (g::float8 / $3) * interval '730 days' AS ts, random() < $4 AS waiting) x`,
			lo, hi, photos, pending, asOf.Start()); err != nil {
			return err
		}
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE photo_audit_clock`); err != nil {
		return err
	}
	var total, waiting int
	_ = pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE audited_at IS NULL) FROM photo_audit_clock`).Scan(&total, &waiting)
	fmt.Printf("photo-audit clock: %d photos, %d awaiting audit (%.1f%%), filled and vacuumed in %s\n",
		total, waiting, 100*float64(waiting)/float64(total), time.Since(start).Round(time.Second))

	conf, err := photoaudit.LoadConfig(envconf.New([]string{"photo_audit_providers=kiosk=provider-a,outlet=provider-b"}))
	if err != nil {
		return err
	}
	svc := &photoaudit.Service{Pool: pool, Config: conf, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	q := photoaudit.Query{AsOf: asOf, Threshold: 3}
	var overdue int
	service := measure(runs, func() error {
		rep, err := svc.Overdue(ctx, q)
		overdue = rep.Total
		return err
	})
	q.Provider = "provider-c"
	one := measure(runs, func() error { _, err := svc.Overdue(ctx, q); return err })

	cal, err := svc.Calendar(ctx)
	if err != nil {
		return err
	}
	cut, err := cal.Cutoff(asOf, 3)
	if err != nil {
		return err
	}
	const bare = `SELECT count(*) FROM photo_audit_clock WHERE audited_at IS NULL AND submitted_at IS NOT NULL AND submitted_at < $1`
	floor := measure(runs, func() error { var n int; return pool.QueryRow(ctx, bare, cut).Scan(&n) })
	var plan string
	_ = pool.QueryRow(ctx, `EXPLAIN `+bare, cut).Scan(&plan)
	noIndex := measure(min(runs, 3), func() error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off`); err != nil {
				return err
			}
			var n int
			return tx.QueryRow(ctx, bare, cut).Scan(&n)
		})
	})

	fmt.Printf("overdue as of %s (threshold 3 working days): %d photos\n", asOf, overdue)
	fmt.Printf("plan of the count: %s\n", plan)
	fmt.Printf("overdue count, per provider and total (Service.Overdue, calendar load included): median %s (target <= 1s)\n", service)
	fmt.Printf("overdue count, one provider:                                                  median %s\n", one)
	fmt.Printf("floor: bare index-only count(*) of the same rows:                             median %s; service/floor %.2f\n",
		floor, float64(service)/float64(floor))
	fmt.Printf("without the partial index (sequential scan of %d rows):                   median %s; %.0fx the service\n",
		total, noIndex, float64(noIndex)/float64(service))
	return nil
}

// measure runs fn once to warm up, then runs times, and returns the median.
func measure(runs int, fn func() error) time.Duration {
	if err := fn(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-photoaudit:", err)
		os.Exit(1)
	}
	ds := make([]time.Duration, runs)
	for i := range ds {
		t := time.Now()
		if err := fn(); err != nil {
			fmt.Fprintln(os.Stderr, "bench-photoaudit:", err)
			os.Exit(1)
		}
		ds[i] = time.Since(t)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Round(10 * time.Microsecond)
}
