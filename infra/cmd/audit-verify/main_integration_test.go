//go:build integration

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/tests/testenv"
)

func TestAuditVerifyCommand(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	pool := env.Pool(t, dsn)
	dir := t.TempDir()
	key, _ := gm.GenerateKey()
	pemText, _ := gm.MarshalPrivateKeyPEM(key)
	// Only the private key is mounted: the command derives the public half.
	for name, v := range map[string][]byte{"postgres-password": []byte(env.Secret(t, "postgres-password")), audit.SecretSignKey: pemText} {
		if err := os.WriteFile(filepath.Join(dir, name), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"postgres_dsn=" + dsn, "secret_mount_path=" + dir}
	runIt := testenv.Command(ctx, run, environ)
	if code, out := runIt(); code != 0 || !strings.HasPrefix(out, "OK 0 entries") {
		t.Fatalf("empty log: %d %q", code, out)
	}
	log := &audit.Log{Signer: key, CheckpointEvery: -1}
	for i := range 5 {
		if _, err := log.Append(ctx, pool, audit.Entry{Actor: "system", Channel: "schedule", Action: "reconcile.run",
			ObjectType: "batch", ObjectID: "batch-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := runIt("-checkpoint"); code != 0 || !strings.Contains(out, "checkpoint signed at position 5") ||
		!strings.Contains(out, "OK 5 entries, 1 checkpoints") {
		t.Fatalf("after 5 entries: %d %q", code, out)
	}
	for _, s := range []string{`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change`,
		`UPDATE audit_log SET object_id = 'batch-z' WHERE seq = 2`} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := runIt(); code != 1 || !strings.HasPrefix(out, "BROKEN at position 2 (seq 2): entry content does not match") {
		t.Fatalf("tampered: %d %q", code, out)
	}
	os.Remove(filepath.Join(dir, audit.SecretSignKey))
	if code, _ := runIt(); code != 2 {
		t.Fatalf("without a key: want exit 2, got %d", code)
	}
}
