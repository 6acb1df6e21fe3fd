// Command pii-rewrap moves encrypted PII columns to the newest KEK version after a key
// rotation (shared/pii). It reads postgres_dsn and secret_mount_path like the functions
// (postgres-password, pii-kek, pii-index-key).
//
//	pii-rewrap -column people.id_no_ct:id -column people.phone_ct:id
//	pii-rewrap -check -column …            only count values by KEK version
//	pii-rewrap -retire 1 -column …         after the rewrap, retire the DEKs of versions ≤ 1
//	                                       when no listed column still uses them
//
// A column is table.column:key, key being the primary key whose text form is the row
// identity the values were encrypted with. Exit 1 when a value failed to decrypt or old
// versions remain; 2 when the job could not run. Row keys of failures are printed; values never.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/secrets"
)

type columns []pii.Column

func (c *columns) String() string { return fmt.Sprint(*c) }
func (c *columns) Set(s string) error {
	col, err := pii.ParseColumn(s)
	if err != nil {
		return err
	}
	*c = append(*c, col)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("pii-rewrap", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cols columns
	fl.Var(&cols, "column", "encrypted column as table.column:key (repeatable)")
	check := fl.Bool("check", false, "only count values by KEK version")
	retire := fl.Int("retire", 0, "retire the data keys of KEK versions up to N when no listed column uses them")
	batch := fl.Int("batch", 500, "rows per transaction")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "pii-rewrap:", err)
		return 2
	}
	if len(cols) == 0 {
		fmt.Fprintln(stderr, "usage: pii-rewrap [-check] [-retire N] -column table.column:key …")
		return 2
	}
	if err := gm.SelfTest(); err != nil {
		return fail(err)
	}
	e := envconf.New(environ)
	sec := secrets.Reader{Dir: e.String("secret_mount_path", secrets.DefaultMountPath)}
	cfg, err := pgxpool.ParseConfig(e.String("postgres_dsn", "postgres://sscard@127.0.0.1:5432/sscard?sslmode=disable"))
	if err != nil {
		return fail(fmt.Errorf("postgres_dsn: %w", err))
	}
	if cfg.ConnConfig.Password, err = sec.Optional("postgres-password"); err != nil {
		return fail(err)
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	kr, err := pii.FromSecrets(sec, pii.PGStore{DB: pool})
	if err != nil {
		return fail(err)
	}
	active := kr.ActiveVersion()
	code, retireBlocked := 0, false
	for _, c := range cols {
		name := c.Table + "." + c.Column
		if !*check {
			st, err := pii.RewrapColumn(ctx, pool, kr, c, *batch)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", name, err))
			}
			fmt.Fprintf(stdout, "%s: rewrapped %d to version %d", name, st.Rewrapped, active)
			if len(st.Failed) > 0 {
				code = 1
				shown := st.Failed[:min(len(st.Failed), 20)]
				fmt.Fprintf(stdout, "; %d did not decrypt (rows %s)", len(st.Failed), strings.Join(shown, ", "))
			}
			fmt.Fprintln(stdout)
		}
		counts, err := pii.CountVersions(ctx, pool, c)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", name, err))
		}
		fmt.Fprintf(stdout, "%s: %s\n", name, describe(counts))
		for v, n := range counts {
			if n > 0 && v < active {
				code = 1 // old versions, or values that are not ciphertexts at all
			}
			if n > 0 && v >= 1 && v <= *retire {
				fmt.Fprintf(stdout, "%s: version %d still in use\n", name, v)
				retireBlocked = true
			}
		}
	}
	if *retire > 0 && retireBlocked {
		fmt.Fprintf(stdout, "not retiring versions ≤ %d: rewrap first\n", *retire)
	} else if *retire > 0 {
		if *retire >= active {
			return fail(fmt.Errorf("cannot retire the active version %d", active))
		}
		n, err := pii.RetireVersion(ctx, pool, *retire)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "retired %d data keys of versions ≤ %d; remove those lines from %s\n", n, *retire, pii.SecretKEK)
	}
	return code
}

func describe(counts map[int]int) string {
	if len(counts) == 0 {
		return "no values"
	}
	vs := make([]int, 0, len(counts))
	for v := range counts {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v == 0 {
			parts[i] = fmt.Sprintf("%d not pii1", counts[v])
		} else {
			parts[i] = fmt.Sprintf("%d under version %d", counts[v], v)
		}
	}
	return strings.Join(parts, ", ")
}
