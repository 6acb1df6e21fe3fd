package pii

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/gm/gmbench"
)

// The standard-library counterpart does the same work per field: AES-128-GCM with the
// same additional data and the same stored form.
func aesField(b *testing.B) (seal func(f Field, pt string) string, open func(f Field, s string) string) {
	key := make([]byte, 16)
	rand.Read(key)
	blk, _ := aes.NewCipher(key)
	a, _ := cipher.NewGCM(blk)
	seal = func(f Field, pt string) string {
		sealed, _ := gm.Seal(a, []byte(pt), valueAAD(f, 1, "0011223344556677"))
		return prefix + strconv.Itoa(1) + ":0011223344556677:" + base64.RawURLEncoding.EncodeToString(sealed)
	}
	open = func(f Field, s string) string {
		_, _, sealed, err := ParseCiphertext(s)
		if err != nil {
			b.Fatal(err)
		}
		pt, err := gm.Open(a, sealed, valueAAD(f, 1, "0011223344556677"))
		if err != nil {
			b.Fatal(err)
		}
		return string(pt)
	}
	return seal, open
}

var benchField = Field{Table: "people", Column: "id_no_ct", Row: "7f9c0000-0000-4000-8000-000000000001"}

func BenchmarkFieldEncrypt(b *testing.B) {
	keks, _ := testKEKs(b, 1)
	k := testKeyring(b, keks, &MemStore{})
	ctx := context.Background()
	seal, _ := aesField(b)
	gmbench.Compare(b, "aes128-gcm", func(b *testing.B) {
		for b.Loop() {
			seal(benchField, "110101199003071234")
		}
	}, "sm4-gcm", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Encrypt(ctx, benchField, "110101199003071234"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFieldDecrypt(b *testing.B) {
	keks, _ := testKEKs(b, 1)
	k := testKeyring(b, keks, &MemStore{})
	ctx := context.Background()
	seal, open := aesField(b)
	ct, _ := k.Encrypt(ctx, benchField, "110101199003071234")
	act := seal(benchField, "110101199003071234")
	gmbench.Compare(b, "aes128-gcm", func(b *testing.B) {
		for b.Loop() {
			open(benchField, act)
		}
	}, "sm4-gcm", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Decrypt(ctx, benchField, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBlindIndex(b *testing.B) {
	keks, _ := testKEKs(b, 1)
	k := testKeyring(b, keks, &MemStore{})
	key := make([]byte, 32)
	gmbench.Compare(b, "hmac-sha256", func(b *testing.B) {
		for b.Loop() {
			n, _ := NormaliseIDNumber("11010119900307123x")
			m := hmac.New(sha256.New, key)
			m.Write(gm.LengthPrefixed("pii-bidx/v1", string(KindIDNumber), n))
			m.Sum(nil)
		}
	}, "hmac-sm3", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.BlindIndex(KindIDNumber, "11010119900307123x"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
