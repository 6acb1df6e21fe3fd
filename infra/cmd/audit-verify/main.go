// Command audit-verify walks the audit chain and checks every link and every signed
// checkpoint. It reads the same settings as the functions: postgres_dsn and
// secret_mount_path (postgres-password, audit-sign-public-key or audit-sign-key).
//
//	audit-verify               OK <entries> … (exit 0) or BROKEN at position N (seq S): reason (exit 1)
//	audit-verify -checkpoint   first sign the newest entry (needs audit-sign-key)
//
// Exit status 2: the check could not be made (configuration, database, self-test).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("audit-verify", flag.ContinueOnError)
	fl.SetOutput(stderr)
	checkpoint := fl.Bool("checkpoint", false, "sign a checkpoint of the newest entry before verifying")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "audit-verify:", err)
		return 2
	}
	if err := gm.SelfTest(); err != nil {
		return fail(err)
	}
	e := envconf.New(environ)
	dsn := e.String("postgres_dsn", "postgres://sscard@127.0.0.1:5432/sscard?sslmode=disable")
	sec := secrets.Reader{Dir: e.String("secret_mount_path", secrets.DefaultMountPath)}
	pub, err := audit.LoadPublicKey(sec)
	if err != nil {
		return fail(err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fail(fmt.Errorf("postgres_dsn: %w", err))
	}
	pw, err := sec.Optional("postgres-password")
	if err != nil {
		return fail(err)
	}
	cfg.ConnConfig.Password = pw
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	if *checkpoint {
		signer, err := audit.LoadSigner(sec)
		if err != nil {
			return fail(err)
		}
		c, err := (&audit.Log{Signer: signer}).Checkpoint(ctx, pool)
		if err != nil {
			return fail(err)
		}
		if c != nil {
			fmt.Fprintf(stdout, "checkpoint signed at position %d\n", c.Pos)
		}
	}
	r, err := audit.Verify(ctx, pool, pub)
	if err != nil {
		return fail(err)
	}
	if r.Broken != nil {
		fmt.Fprintf(stdout, "BROKEN at position %d (seq %d): %s\n", r.Broken.Pos, r.Broken.Seq, r.Broken.Reason)
		return 1
	}
	fmt.Fprintf(stdout, "OK %d entries, %d checkpoints, last position %d, head %x\n", r.Entries, r.Checkpoints, r.LastPos, r.LastHash)
	if r.Pending > 0 {
		// Committed entries wait for a sealer for well under a second while functions run;
		// an old one means no sealer has run since (every function instance runs one).
		fmt.Fprintf(stdout, "pending %d entries not sealed yet, oldest from %s\n", r.Pending, r.OldestPending.Format(time.RFC3339))
	}
	return 0
}
