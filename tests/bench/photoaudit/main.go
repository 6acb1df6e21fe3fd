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
	"slices"
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
	keep := flag.Bool("keep", false, "keep the database (its DSN is printed) for inspection or -reuse")
	reuse := flag.String("reuse", "", "measure on a database kept by -keep (its DSN) instead of filling a new one")
	flag.Parse()
	if err := run(*photos, *pending, *runs, *keep, *reuse); err != nil {
		fmt.Fprintln(os.Stderr, "bench-photoaudit:", err)
		os.Exit(1)
	}
}

func run(photos int, pending float64, runs int, keep bool, reuse string) error {
	ctx := context.Background()
	pw, err := secrets.Reader{Dir: os.Getenv("secret_mount_path")}.Read("postgres-password")
	if err != nil {
		return fmt.Errorf("test services' secrets (make services-test, then source .state/test/env): %w", err)
	}
	dsn, drop := reuse, func() {}
	if reuse == "" {
		if dsn, drop, err = testenv.CreateDatabase(ctx, os.Getenv("postgres_dsn"), pw); err != nil {
			return err
		}
	}
	if keep {
		fmt.Println("database kept:", dsn)
	} else {
		defer drop()
	}
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
	for lo := 1; reuse == "" && lo <= photos; lo += chunk {
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
	if reuse == "" {
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE photo_audit_clock`); err != nil {
			return err
		}
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
	cal, err := svc.Calendar(ctx)
	if err != nil {
		return err
	}
	cut, err := cal.Cutoff(asOf, 3)
	if err != nil {
		return err
	}
	const bare = `SELECT count(*) FROM photo_audit_clock WHERE audited_at IS NULL AND submitted_at IS NOT NULL AND submitted_at < $1`
	const noIndexes = `SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_bitmapscan = off`
	const oneProcess = `SET LOCAL max_parallel_workers_per_gather = 0`
	count := func(set string) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if set != "" {
				if _, err := tx.Exec(ctx, set); err != nil {
					return err
				}
			}
			var n int
			return tx.QueryRow(ctx, bare, cut).Scan(&n)
		})
	}
	var overdue int
	// The four are measured in turns, so the load of the shared machine falls on each alike.
	targets := []struct {
		name string
		fn   func() error
	}{
		{"overdue count, per provider and total (Service.Overdue, calendar load included)", func() error {
			rep, err := svc.Overdue(ctx, q)
			overdue = rep.Total
			return err
		}},
		{"overdue count of one provider (Service.Overdue)", func() error {
			one := q
			one.Provider = "provider-c"
			_, err := svc.Overdue(ctx, one)
			return err
		}},
		{"floor: bare index-only count(*) of the same rows, one process", func() error { return count(oneProcess) }},
		{"the bare count with parallel workers (Postgres' own plan)", func() error { return count("") }},
		{"the bare count without the partial index (parallel sequential scan)", func() error { return count(noIndexes) }},
	}
	times := make([][]time.Duration, len(targets))
	for i := -1; i < runs; i++ { // round -1 warms up
		for j, tg := range targets {
			t0 := time.Now()
			if err := tg.fn(); err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			if i >= 0 {
				times[j] = append(times[j], time.Since(t0))
			}
		}
	}
	med := make([]time.Duration, len(targets))
	fmt.Printf("overdue as of %s (threshold 3 working days): %d photos (cutoff %s)\n", asOf, overdue, cut.UTC().Format(time.RFC3339))
	for j, tg := range targets {
		med[j] = median(times[j])
		fmt.Printf("  %-84s median %8s  min %8s\n", tg.name+":", med[j], slices.Min(times[j]).Round(10*time.Microsecond))
	}
	fmt.Printf("service/floor %.2f; parallel/floor %.2f; without the index / service %.1fx; target <= 1s: %v\n",
		float64(med[0])/float64(med[2]), float64(med[3])/float64(med[2]), float64(med[4])/float64(med[0]), med[0] <= time.Second)
	for _, p := range []struct{ name, set string }{{"of the floor", oneProcess}, {"without the index", noIndexes}} {
		_ = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if p.set != "" {
				if _, err := tx.Exec(ctx, p.set); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, `EXPLAIN `+bare, cut)
			if err != nil {
				return err
			}
			defer rows.Close()
			fmt.Printf("plan %s:\n", p.name)
			for rows.Next() {
				var line string
				_ = rows.Scan(&line)
				fmt.Println("   ", line)
			}
			return rows.Err()
		})
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}
