package ecard

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

func TestVerifier_AcceptsOnlyTheSignedFreshStatement(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureLocalKeys(dir); err != nil {
		t.Fatal(err)
	}
	privPEM, _ := os.ReadFile(filepath.Join(dir, LocalKeySecret))
	pubPEM, _ := os.ReadFile(filepath.Join(dir, PlatformKeySecret))
	priv, err := ParsePrivateKey(string(privPEM))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a := Assertion{SessionID: "s1", State: StateConfirmed, ECardNo: "E1", IssuedAt: now, Nonce: "n"}
	a.Signature, _ = sign(priv, a.Canonical())
	v := Verifier{Key: pub}
	if err := v.Assertion(a, now); err != nil {
		t.Fatalf("genuine assertion: %v", err)
	}
	tampered := a
	tampered.ECardNo = "E2"
	stale := a
	other, _ := sm2.GenerateKey(rand.Reader)
	forged := a
	forged.Signature, _ = sign(other, a.Canonical())
	for name, c := range map[string]struct {
		a   Assertion
		now time.Time
	}{
		"tampered field": {tampered, now},
		"stale":          {stale, now.Add(10 * time.Minute)},
		"other key":      {forged, now},
		"no signature":   {Assertion{SessionID: "s1"}, now},
	} {
		if err := v.Assertion(c.a, c.now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: want ErrSignature, got %v", name, err)
		}
	}

	info := CardInfo{ECardNo: "E1", IDNumber: "11010519491231002X", Name: "张三", SignLevel: 1, IssuedAt: now}
	info.Signature, _ = sign(priv, info.Canonical())
	if err := v.CardInfo(info, now); err != nil {
		t.Errorf("genuine card info: %v", err)
	}
	info.Name = "李四"
	if err := v.CardInfo(info, now); !errors.Is(err, ErrSignature) {
		t.Errorf("altered card info: want ErrSignature, got %v", err)
	}
	// Keys are not overwritten once present.
	if err := EnsureLocalKeys(dir); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, LocalKeySecret))
	if string(again) != string(privPEM) {
		t.Error("EnsureLocalKeys replaced an existing key")
	}
}
