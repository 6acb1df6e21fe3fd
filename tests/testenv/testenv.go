// Package testenv connects integration tests to the real servers that
// infra/scripts/services.sh started for `make test` (its env file), and gives each test
// a database of its own so packages can run in parallel.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/secrets"
)

// Env is the test services' configuration.
type Env struct {
	Root    string            // repository root
	Vars    map[string]string // from the env file
	Secrets secrets.Reader
}

// Load finds the env file of the test services ($SSCARD_TEST_ENV, else
// <root>/.state/test/env) and fails the test with the command to run when it is missing.
func Load(t testing.TB) *Env {
	t.Helper()
	root := RepoRoot(t)
	path := os.Getenv("SSCARD_TEST_ENV")
	if path == "" {
		path = filepath.Join(root, ".state", "test", "env")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("test services are not running (%v); run `make test`, or `make services-test` first", err)
	}
	defer f.Close()
	e := &Env{Root: root, Vars: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			e.Vars[k] = strings.Trim(v, "'")
		}
	}
	e.Secrets = secrets.Reader{Dir: e.Vars["secret_mount_path"]}
	return e
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Secret reads one of the generated local secrets.
func (e *Env) Secret(t testing.TB, name string) string {
	t.Helper()
	v, err := e.Secrets.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NewDatabase creates an empty, migrated database for this test and drops it afterwards.
// It returns the DSN (without password, as functions take it).
func (e *Env) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn, drop, err := CreateDatabase(ctx, e.Vars["postgres_dsn"], e.Secret(t, "postgres-password"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return dsn
}

// CreateDatabase creates an empty, migrated database next to the one admin names, and
// returns its DSN (admin's, with the database swapped) and the function that drops it.
func CreateDatabase(ctx context.Context, admin, pw string) (dsn string, drop func(), err error) {
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		return "", nil, err
	}
	cfg.Password = pw
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sscard_t_" + hex.EncodeToString(b[:])
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", nil, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(ctx)
	if err != nil {
		return "", nil, err
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	dsn = strings.Replace(admin, "/"+cfg.Database+"?", "/"+name+"?", 1)
	if _, err := db.Migrate(ctx, dsn, pw); err != nil {
		drop()
		return "", nil, err
	}
	return dsn, drop, nil
}

// Pool opens a pool on dsn for the test's own queries.
func (e *Env) Pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Password = e.Secret(t, "postgres-password")
	cfg.MaxConns = 32 // tests hold many transactions open at once
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// FunctionEnv is the environment a function process gets in tests, with overrides last.
func (e *Env) FunctionEnv(dsn string, overrides ...string) []string {
	env := []string{
		"postgres_dsn=" + dsn,
		"redis_addr=" + e.Vars["redis_addr"],
		"s3_endpoint=" + e.Vars["s3_endpoint"],
		"secret_mount_path=" + e.Vars["secret_mount_path"],
		"healthcheck_interval=0s",
		"function_host=127.0.0.1",
		"function_port=0",
		// The local e-card authority plays the national platform and the phone in tests;
		// functions refuse it without the development switch (docs/security.md).
		"ecard_authority=local",
		"sscard_development=true",
	}
	return append(env, overrides...)
}

// Eventually polls cond until it holds or the limit passes.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, limit)
}
