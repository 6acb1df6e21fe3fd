package pii

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/shared/gm"
)

func testKEKs(t testing.TB, versions ...int) (*KEKs, map[int][]byte) {
	t.Helper()
	keys := map[int][]byte{}
	var text strings.Builder
	text.WriteString("# test\n\n")
	for _, v := range versions {
		k, _ := gm.RandomKey(16)
		keys[v] = k
		text.WriteString(FormatKEK(v, k) + "\n")
	}
	keks, err := ParseKEKs(text.String())
	if err != nil {
		t.Fatal(err)
	}
	return keks, keys
}

func kekText(keys map[int][]byte, versions ...int) string {
	var b strings.Builder
	for _, v := range versions {
		b.WriteString(FormatKEK(v, keys[v]) + "\n")
	}
	return b.String()
}

func testKeyring(t testing.TB, keks *KEKs, store DEKStore) *Keyring {
	t.Helper()
	idx := bytes.Repeat([]byte{7}, 32)
	k, err := NewKeyring(keks, idx, store)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKEKs(t *testing.T) {
	keks, _ := testKEKs(t, 1, 3, 2)
	if keks.Active() != 3 || len(keks.Versions()) != 3 || keks.Versions()[0] != 1 {
		t.Fatalf("active %d versions %v", keks.Active(), keks.Versions())
	}
	secret := "00112233445566778899aabbccddeeff"
	for _, bad := range []string{"", "# only a comment", "x:" + secret, "0:" + secret, "1:" + secret[:30],
		"1:" + secret + "\n1:" + secret, "1 " + secret, "1:" + secret + "00"} {
		_, err := ParseKEKs(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), secret[:8]) {
			t.Errorf("error shows key material: %v", err)
		}
	}
}

func TestEncryptDecryptAndAAD(t *testing.T) {
	ctx := context.Background()
	keks, _ := testKEKs(t, 1)
	k := testKeyring(t, keks, &MemStore{})
	f := Field{Table: "people", Column: "id_no_ct", Row: "7f9c0000-0000-4000-8000-000000000001"}
	ct, err := k.Encrypt(ctx, f, "110101199003071234")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, "pii1:1:") || strings.Contains(ct, "1101011990") {
		t.Fatalf("stored form %q", ct)
	}
	ct2, _ := k.Encrypt(ctx, f, "110101199003071234")
	if ct == ct2 {
		t.Fatal("encryption is deterministic")
	}
	if pt, err := k.Decrypt(ctx, f, ct); err != nil || pt != "110101199003071234" {
		t.Fatalf("round trip: %q %v", pt, err)
	}
	for name, g := range map[string]Field{
		"other row":    {Table: f.Table, Column: f.Column, Row: "7f9c0000-0000-4000-8000-000000000002"},
		"other column": {Table: f.Table, Column: "phone_ct", Row: f.Row},
		"other table":  {Table: "applicants", Column: f.Column, Row: f.Row},
	} {
		if _, err := k.Decrypt(ctx, g, ct); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: want ErrDecrypt, got %v", name, err)
		}
	}
	// Tampering with any part of the stored text.
	v, id, sealed, _ := ParseCiphertext(ct)
	if v != 1 || len(id) != 16 {
		t.Fatal("prefix")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	other, _ := gm.RandomKey(8)
	for name, bad := range map[string]string{
		"ciphertext bit": "pii1:1:" + id + ":" + b64(flipped),
		"version":        "pii1:2:" + id + ":" + b64(sealed),
		"data key id":    "pii1:1:" + hexs(other) + ":" + b64(sealed),
		"no prefix":      ct[5:],
		"truncated":      ct[:len(ct)-4],
	} {
		if _, err := k.Decrypt(ctx, f, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: want ErrDecrypt, got %v", name, err)
		}
	}
	if _, err := k.Encrypt(ctx, Field{Table: "people", Column: "x"}, "v"); err == nil {
		t.Fatal("field without row accepted")
	}
}

func TestRotationInMemory(t *testing.T) {
	ctx := context.Background()
	store := &MemStore{}
	_, keys := testKEKs(t, 1, 2)
	k1v, _ := ParseKEKs(kekText(keys, 1))
	k12, _ := ParseKEKs(kekText(keys, 1, 2))
	k2v, _ := ParseKEKs(kekText(keys, 2))
	old := testKeyring(t, k1v, store)
	f := Field{Table: "people", Column: "phone_ct", Row: "42"}
	ct1, _ := old.Encrypt(ctx, f, "13812345678")

	both := testKeyring(t, k12, store)
	ct2, _ := both.Encrypt(ctx, f, "13912345678")
	if !strings.HasPrefix(ct2, "pii1:2:") || !both.NeedsRewrap(ct1) || both.NeedsRewrap(ct2) {
		t.Fatalf("new values must use version 2: %q", ct2)
	}
	if pt, err := both.Decrypt(ctx, f, ct1); err != nil || pt != "13812345678" {
		t.Fatalf("old value unreadable after rotation: %v", err)
	}
	moved, err := both.Rewrap(ctx, f, ct1)
	if err != nil || !strings.HasPrefix(moved, "pii1:2:") {
		t.Fatalf("rewrap: %q %v", moved, err)
	}
	newOnly := testKeyring(t, k2v, store)
	if pt, err := newOnly.Decrypt(ctx, f, moved); err != nil || pt != "13812345678" {
		t.Fatalf("rewrapped value under v2 only: %v", err)
	}
	if _, err := newOnly.Decrypt(ctx, f, ct1); !errors.Is(err, ErrDecrypt) {
		t.Fatal("a value of a removed KEK version still decrypts")
	}
}

func TestDEKRotatesByAge(t *testing.T) {
	ctx := context.Background()
	keks, _ := testKEKs(t, 1)
	k := testKeyring(t, keks, &MemStore{})
	f := Field{Table: "t", Column: "c", Row: "1"}
	a, _ := k.Encrypt(ctx, f, "x")
	b, _ := k.Encrypt(ctx, f, "x")
	_, ida, _, _ := ParseCiphertext(a)
	_, idb, _, _ := ParseCiphertext(b)
	if ida != idb {
		t.Fatal("a young DEK should be reused")
	}
	k.MaxDEKAge = time.Nanosecond
	time.Sleep(time.Millisecond)
	c, _ := k.Encrypt(ctx, f, "x")
	_, idc, _, _ := ParseCiphertext(c)
	if idc == ida {
		t.Fatal("an old DEK is still used for new values")
	}
	if pt, err := k.Decrypt(ctx, f, a); err != nil || pt != "x" {
		t.Fatal("value under the old DEK unreadable")
	}
}

func TestBlindIndex(t *testing.T) {
	keks, _ := testKEKs(t, 1)
	k := testKeyring(t, keks, &MemStore{})
	idx := func(kind Kind, v string) []byte {
		b, err := k.BlindIndex(kind, v)
		if err != nil {
			t.Fatalf("%s %q: %v", kind, v, err)
		}
		return b
	}
	id := idx(KindIDNumber, "11010119900307123X")
	for _, v := range []string{"11010119900307123x", " 110101 19900307 123x ", "110101-19900307-123X"} {
		if !bytes.Equal(idx(KindIDNumber, v), id) {
			t.Errorf("%q indexes differently", v)
		}
	}
	ph := idx(KindPhone, "13812345678")
	for _, v := range []string{"+86 138-1234-5678", "008613812345678", "8613812345678", "(138) 1234 5678"} {
		if !bytes.Equal(idx(KindPhone, v), ph) {
			t.Errorf("%q indexes differently", v)
		}
	}
	if len(ph) != IndexSize || bytes.Equal(idx(KindPhone, "13812345679"), ph) || bytes.Equal(idx(KindExact, "13812345678"), ph) {
		t.Fatal("index not specific to value and kind")
	}
	other := testKeyring(t, keks, &MemStore{})
	other.index = bytes.Repeat([]byte{8}, 32)
	if b, _ := other.BlindIndex(KindPhone, "13812345678"); bytes.Equal(b, ph) {
		t.Fatal("index does not depend on the key")
	}
	for _, bad := range []string{"12812345678", "1381234567", "+1 13812345678", "138123456789", "138 1234 567a"} {
		if _, err := k.BlindIndex(KindPhone, bad); !errors.Is(err, ErrNotNormalisable) {
			t.Errorf("phone %q: %v", bad, err)
		}
	}
	if _, err := k.BlindIndex(KindIDNumber, "张三"); !errors.Is(err, ErrNotNormalisable) {
		t.Error("a name indexed as an ID number")
	}
}
