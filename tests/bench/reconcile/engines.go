package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/reconcile"
)

// runGo is the job's matching as the function runs it: FeedPlain parses each file in
// parallel chunks into the partitioned join (the ledger arrives in this format from
// COPY … TO STDOUT), then Finish lists the discrepancies with the summary.
func runGo(platform, channel string, n int) (Outcome, error) {
	t0 := time.Now()
	j := reconcile.NewJoin(reconcile.Options{ExpectRows: n})
	feed := func(side reconcile.Side, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var fs []*reconcile.Feeder
		_, err = reconcile.FeedPlain(f, 0, func() reconcile.Emitter { x := j.Feeder(side); fs = append(fs, x); return x })
		for _, x := range fs {
			x.Close()
		}
		return err
	}
	j.Begin(reconcile.SidePlatform)
	err := feed(reconcile.SidePlatform, platform)
	j.End()
	if err != nil {
		return Outcome{}, err
	}
	t1 := time.Now()
	j.Begin(reconcile.SideChannel)
	err = feed(reconcile.SideChannel, channel)
	j.End()
	if err != nil {
		return Outcome{}, err
	}
	t2 := time.Now()
	res := j.Finish()
	wall := time.Since(t0).Seconds()
	c := res.Counts()
	return Outcome{Engine: "go", Wall: wall, Phases: fmt.Sprintf("build %.2f s, probe %.2f s, finish %.2f s, %d listed",
		t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), time.Since(t2).Seconds(), len(res.Discrepancies)),
		Counts: map[string]int64{"long": c[reconcile.ClassLong], "short": c[reconcile.ClassShort], "amount": c[reconcile.ClassAmount],
			"status": c[reconcile.ClassStatus], "duplicate": c[reconcile.ClassDuplicate]}}, nil
}

// classify is the same classification in SQL for DuckDB and PostgreSQL: the channel
// side grouped by key (a key twice is a duplicate), then a FULL OUTER JOIN; only the
// discrepancies are kept, as the job keeps them.
func classify(p, c string) string {
	return `SELECT coalesce(p.txn_id, c.txn_id) AS txn_id,
		CASE WHEN p.txn_id IS NULL THEN 'long' WHEN c.txn_id IS NULL THEN 'short'
		     WHEN p.amount_fen <> c.amount_fen THEN 'amount' WHEN p.status <> c.status THEN 'status' ELSE 'matched' END AS class,
		coalesce(c.n, 0) AS n, p.amount_fen AS platform_fen, c.amount_fen AS channel_fen
	FROM ` + p + ` p FULL OUTER JOIN (SELECT txn_id, min(amount_fen) AS amount_fen, min(status) AS status, count(*) AS n
		FROM ` + c + ` GROUP BY txn_id) c ON p.txn_id = c.txn_id
	WHERE p.txn_id IS NULL OR c.txn_id IS NULL OR p.amount_fen <> c.amount_fen OR p.status <> c.status OR c.n > 1`
}

const countSQL = `SELECT class, count(*) FROM %[1]s WHERE class <> 'matched' GROUP BY class
	UNION ALL SELECT 'duplicate', coalesce(sum(n - 1), 0) FROM %[1]s WHERE n > 1`

func counts(rows interface {
	Next() bool
	Scan(...any) error
}) map[string]int64 {
	m := map[string]int64{}
	for rows.Next() {
		var c string
		var n int64
		if rows.Scan(&c, &n) == nil {
			m[c] += n
		}
	}
	return m
}

// runDuck: DuckDB reads both CSVs (typed, timestamps parsed) straight into the join, two
// threads.
func runDuck(platform, channel string) (Outcome, error) {
	t0 := time.Now()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return Outcome{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`SET threads = 2`); err != nil {
		return Outcome{}, err
	}
	read := func(path string) string {
		return `read_csv('` + path + `', header = true, columns = {'txn_id': 'VARCHAR', 'amount_fen': 'BIGINT', 'status': 'VARCHAR', 'ts': 'TIMESTAMP'})`
	}
	if _, err := db.Exec(`CREATE TABLE d AS ` + classify(read(platform), read(channel))); err != nil {
		return Outcome{}, err
	}
	t1 := time.Now()
	rows, err := db.Query(fmt.Sprintf(countSQL, "d"))
	if err != nil {
		return Outcome{}, err
	}
	defer rows.Close()
	m := counts(rows)
	return Outcome{Engine: "duckdb", Wall: time.Since(t0).Seconds(), Phases: fmt.Sprintf("read+join %.2f s", t1.Sub(t0).Seconds()),
		Counts: m}, rows.Err()
}

// runPG: both files COPY'd into unlogged tables (two connections at once, one per file),
// then the FULL OUTER JOIN with a work_mem large enough for one hash batch.
func runPG(platform, channel string) (Outcome, error) {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(os.Getenv("postgres_dsn"))
	if err != nil {
		return Outcome{}, fmt.Errorf("postgres_dsn: %w", err)
	}
	if pw, err := os.ReadFile(filepath.Join(os.Getenv("secret_mount_path"), "postgres-password")); err == nil {
		cfg.Password = strings.TrimSpace(string(pw))
	}
	connect := func() (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }
	setup, err := connect()
	if err != nil {
		return Outcome{}, err
	}
	defer setup.Close(ctx)
	for _, t := range []string{"bench_recon_p", "bench_recon_c", "bench_recon_d"} {
		if _, err := setup.Exec(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return Outcome{}, err
		}
	}
	for _, t := range []string{"bench_recon_p", "bench_recon_c"} {
		if _, err := setup.Exec(ctx, `CREATE UNLOGGED TABLE `+t+` (txn_id text, amount_fen bigint, status text, ts timestamp)`); err != nil {
			return Outcome{}, err
		}
	}
	defer func() {
		for _, t := range []string{"bench_recon_p", "bench_recon_c", "bench_recon_d"} {
			_, _ = setup.Exec(ctx, `DROP TABLE IF EXISTS `+t)
		}
	}()
	var pids []int
	t0 := time.Now()
	errs := make(chan error, 2)
	for _, job := range [][2]string{{"bench_recon_p", platform}, {"bench_recon_c", channel}} {
		conn, err := connect()
		if err != nil {
			return Outcome{}, err
		}
		defer conn.Close(ctx)
		pids = append(pids, int(conn.PgConn().PID()))
		go func() {
			f, err := os.Open(job[1])
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			_, err = conn.PgConn().CopyFrom(ctx, f, `COPY `+job[0]+` FROM STDIN (FORMAT csv, HEADER true)`)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return Outcome{}, err
		}
	}
	t1 := time.Now()
	pids = append(pids, int(setup.PgConn().PID()))
	if _, err := setup.Exec(ctx, `SET work_mem = '1536MB'`); err != nil {
		return Outcome{}, err
	}
	if _, err := setup.Exec(ctx, `CREATE UNLOGGED TABLE bench_recon_d AS `+classify("bench_recon_p", "bench_recon_c")); err != nil {
		return Outcome{}, err
	}
	rows, err := setup.Query(ctx, fmt.Sprintf(countSQL, "bench_recon_d"))
	if err != nil {
		return Outcome{}, err
	}
	m := counts(rows)
	rows.Close()
	wall := time.Since(t0).Seconds()
	var peak int64
	for _, pid := range pids {
		if v := vmHWM(pid); v > peak {
			peak = v
		}
	}
	return Outcome{Engine: "pg", Wall: wall, Phases: fmt.Sprintf("COPY %.2f s, join %.2f s (peak RSS: largest backend)",
		t1.Sub(t0).Seconds(), time.Since(t1).Seconds()), Counts: m, ServerRSS: peak}, rows.Err()
}

// vmHWM is a local process's peak resident set in KB (0 when it cannot be read).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}
