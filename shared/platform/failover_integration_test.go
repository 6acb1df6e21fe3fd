//go:build integration

package platform_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/tests/testenv"
)

// A multi-host DSN with target_session_attrs=read-write: the pool skips a host that is
// down and connects to the one that accepts writes (what a primary switch looks like to
// a function). A real primary/standby switch is not tested here (docs/deploying.md).
func TestMultiHostDSNFindsTheWritableHost(t *testing.T) {
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	// postgres://user@127.0.0.1:PORT/db?… → postgres://user@127.0.0.1:DEAD,127.0.0.1:PORT/db?…&target_session_attrs=read-write
	at := strings.Index(dsn, "@") + 1
	dead := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	multi := dsn[:at] + dead + "," + dsn[at:] + "&target_session_attrs=read-write"
	cfg, err := platform.LoadConfig("test", []string{"postgres_dsn=" + multi})
	if err != nil {
		t.Fatal(err)
	}
	d, err := platform.Open(context.Background(), "test", cfg, platform.Needs{Postgres: true}, env.Secrets,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var recovery bool
	if err := d.Postgres.QueryRow(context.Background(), `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil || recovery {
		t.Fatalf("want a writable primary through %s, got recovery=%v %v", multi, recovery, err)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Errorf("check: %v", err)
	}
}
