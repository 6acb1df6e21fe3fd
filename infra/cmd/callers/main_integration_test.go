//go:build integration

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/tests/testenv"
)

func TestCallersCommand(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	pool := env.Pool(t, dsn)
	environ := []string{"postgres_dsn=" + dsn, "secret_mount_path=" + env.Vars["secret_mount_path"]}
	runIt := testenv.Command(ctx, run, environ)
	macKey, err := gm.DecodeHexKey(env.Secret(t, callsign.SecretRegistryMAC), 32, false)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(app, key string) (*callsign.Entry, error) {
		snap, err := callsign.LoadSnapshot(ctx, pool, macKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Lookup(ctx, app, key)
	}

	// make run's step: three callers, keys generated once, kiosk registered.
	dir := filepath.Join(t.TempDir(), "callers")
	for range 2 {
		if code, out := runIt("local", "-dir", dir); code != 0 || strings.Count(out, "registered ") != 3 {
			t.Fatalf("local: %d %q", code, out)
		}
	}
	for _, a := range localCallers {
		keyPEM, err := os.ReadFile(filepath.Join(dir, a.ID+".key"))
		if err != nil {
			t.Fatal(err)
		}
		key, _ := gm.ParsePrivateKeyPEM(keyPEM)
		e, err := lookup(a.ID, LocalKeyID)
		if err != nil || !e.Key.Public.Equal(&key.PublicKey) || e.App.Kind != a.Kind || !e.App.Active || len(e.App.Routes) == 0 {
			t.Fatalf("%s: %+v %v", a.ID, e, err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, a.ID+".key")); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode %v", a.ID, fi.Mode())
		}
	}
	var registered bool
	if err := pool.QueryRow(ctx, `SELECT registered FROM kiosks WHERE kiosk_id = 'dev-kiosk-01'`).Scan(&registered); err != nil || !registered {
		t.Errorf("local kiosk in the kiosk registry: %v %v", registered, err)
	}

	// An operator registers a new bank from its public key, suspends it, revokes a key.
	bankKey, _ := gm.GenerateKey()
	pubPEM, _ := gm.MarshalPublicKeyPEM(&bankKey.PublicKey)
	pubFile := filepath.Join(t.TempDir(), "bank.pem")
	_ = os.WriteFile(pubFile, pubPEM, 0o600)
	if code, out := runIt("register", "-app", "bank-abc", "-kind", "bank", "-name", "ABC Wuxi", "-public-key", pubFile); code != 0 {
		t.Fatalf("register: %d %q", code, out)
	}
	if e, err := lookup("bank-abc", "k1"); err != nil || !e.App.Allows("POST", "loss-report", "/cards/X1/loss") {
		t.Fatalf("registered bank: %+v %v", e, err)
	}
	if code, out := runIt("register", "-app", "x", "-kind", "partner", "-name", "n", "-new-key", filepath.Join(t.TempDir(), "x.key")); code != 1 ||
		!strings.Contains(out, "no preset") {
		t.Errorf("a kind without preset and no -route: %d %q", code, out)
	}
	if code, out := runIt("suspend", "-app", "bank-abc"); code != 0 {
		t.Fatalf("suspend: %d %q", code, out)
	}
	if e, _ := lookup("bank-abc", "k1"); e == nil || e.App.Active {
		t.Errorf("suspended app still active: %+v", e)
	}
	if code, out := runIt("suspend", "-app", "bank-abc", "-revoke-key", "k1"); code != 0 {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if e, _ := lookup("bank-abc", "k1"); e == nil || !e.Key.Revoked {
		t.Errorf("revoked key: %+v", e)
	}
	// A row edited outside the tool is shown as refused, and not re-signed by suspend.
	if _, err := pool.Exec(ctx, `UPDATE callsign_apps SET routes = array_append(routes, '* * /*') WHERE app_id = 'bank-sim'`); err != nil {
		t.Fatal(err)
	}
	if code, out := runIt("list"); code != 0 || !strings.Contains(out, "bank-sim\tbank\tactive (REFUSED") ||
		!strings.Contains(out, "POST loss-report /cards/{card}/loss") {
		t.Errorf("list: %d %q", code, out)
	}
	if code, _ := runIt("activate", "-app", "bank-sim"); code != 1 {
		t.Errorf("activate a tampered row: want refusal, got %d", code)
	}
}
