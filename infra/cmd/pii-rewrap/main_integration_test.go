//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/tests/testenv"
)

func TestPIIRewrapCommand(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	pool := env.Pool(t, dsn)
	dir := t.TempDir()
	k1, _ := gm.RandomKey(16)
	k2, _ := gm.RandomKey(16)
	idx, _ := gm.RandomKey(32)
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("postgres-password", env.Secret(t, "postgres-password"))
	write(pii.SecretIndexKey, fmt.Sprintf("%x", idx))
	write(pii.SecretKEK, pii.FormatKEK(1, k1)+"\n")
	if _, err := pool.Exec(ctx, `CREATE TABLE people (id uuid PRIMARY KEY, id_no_ct text)`); err != nil {
		t.Fatal(err)
	}
	kr, err := pii.FromSecrets(secrets.Reader{Dir: dir}, pii.PGStore{DB: pool})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 5 {
		id := uuid.NewString()
		want[id] = fmt.Sprintf("11010119900307%04d", i)
		ct, _ := kr.Encrypt(ctx, pii.Field{Table: "people", Column: "id_no_ct", Row: id}, want[id])
		if _, err := pool.Exec(ctx, `INSERT INTO people VALUES ($1, $2)`, id, ct); err != nil {
			t.Fatal(err)
		}
	}
	write(pii.SecretKEK, "# rotated\n"+pii.FormatKEK(1, k1)+"\n"+pii.FormatKEK(2, k2)+"\n")
	environ := []string{"postgres_dsn=" + dsn, "secret_mount_path=" + dir}
	runIt := testenv.Command(ctx, run, environ)
	if code, out := runIt("-check", "-column", "people.id_no_ct:id"); code != 1 || !strings.Contains(out, "5 under version 1") {
		t.Fatalf("check: %d %q", code, out)
	}
	code, out := runIt("-retire", "1", "-column", "people.id_no_ct:id")
	if code != 0 || !strings.Contains(out, "rewrapped 5 to version 2") || !strings.Contains(out, "5 under version 2") ||
		!strings.Contains(out, "retired 1 data keys") {
		t.Fatalf("rewrap: %d %q", code, out)
	}
	for _, v := range want {
		if strings.Contains(out, v) {
			t.Fatal("a value was printed")
		}
	}
	// Version 1 removed from the secret: every value still reads.
	write(pii.SecretKEK, pii.FormatKEK(2, k2)+"\n")
	kr2, _ := pii.FromSecrets(secrets.Reader{Dir: dir}, pii.PGStore{DB: pool})
	for id, v := range want {
		var ct string
		_ = pool.QueryRow(ctx, `SELECT id_no_ct FROM people WHERE id = $1`, id).Scan(&ct)
		if got, err := kr2.Decrypt(ctx, pii.Field{Table: "people", Column: "id_no_ct", Row: id}, ct); err != nil || got != v {
			t.Fatalf("row %s after rotation: %v", id, err)
		}
	}
	if code, _ := runIt("-column", "people;drop:id"); code != 2 {
		t.Fatal("a column spec that is not an identifier was accepted")
	}
}
