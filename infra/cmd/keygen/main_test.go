package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/secrets"
)

func TestKeygenWritesOnceAndKeysLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	var out, errb bytes.Buffer
	if code := run([]string{"-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := []string{"callsign-sign-key", "callsign-sign-public-key", "callsign-enc-key", "callsign-enc-public-key",
		"audit-sign-key", "audit-sign-public-key", "callsign-registry-mac-key", "pii-index-key", "pii-kek"}
	before := map[string][]byte{}
	for _, name := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", name, st.Mode().Perm())
		}
		before[name], _ = os.ReadFile(filepath.Join(dir, name))
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
	if strings.Contains(out.String(), "PRIVATE") {
		t.Fatal("key material printed")
	}

	// Idempotent: nothing rewritten; a removed public half comes back from its private key.
	os.Remove(filepath.Join(dir, "audit-sign-public-key"))
	out.Reset()
	if code := run([]string{"-dir", dir}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if strings.TrimSpace(out.String()) != "wrote audit-sign-public-key" {
		t.Fatalf("second run: %q", out.String())
	}
	for _, name := range want {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.Equal(b, before[name]) {
			t.Errorf("%s was rewritten", name)
		}
	}

	// What keygen writes is what the packages read.
	sec := secrets.Reader{Dir: dir}
	keys, err := callsign.LoadServerKeys(sec)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := sec.Read(callsign.SecretSignPublic)
	if p, err := gm.ParsePublicKeyPEM([]byte(pub)); err != nil || !p.Equal(&keys.Sign.PublicKey) {
		t.Fatalf("sign public key: %v", err)
	}
	kr, err := pii.FromSecrets(sec, &pii.MemStore{})
	if err != nil || kr.ActiveVersion() != 1 {
		t.Fatalf("pii: %v", err)
	}
	f := pii.Field{Table: "t", Column: "c", Row: "1"}
	ct, err := kr.Encrypt(context.Background(), f, "x")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := kr.Decrypt(context.Background(), f, ct); err != nil || pt != "x" {
		t.Fatal(err)
	}
	signer, err := audit.LoadSigner(sec)
	if err != nil {
		t.Fatal(err)
	}
	apub, err := audit.LoadPublicKey(sec)
	if err != nil || !apub.Equal(&signer.PublicKey) {
		t.Fatalf("audit public key: %v", err)
	}
}
