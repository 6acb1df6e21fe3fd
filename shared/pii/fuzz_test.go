package pii

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func b64(b []byte) string  { return base64.RawURLEncoding.EncodeToString(b) }
func hexs(b []byte) string { return hex.EncodeToString(b) }

// FuzzDecrypt: any stored text is parsed without panic; ParseCiphertext accepts only the
// canonical form; and nothing but the genuine value decrypts.
func FuzzDecrypt(f *testing.F) {
	keks, _ := testKEKs(f, 1)
	k := testKeyring(f, keks, &MemStore{})
	field := Field{Table: "people", Column: "id_no_ct", Row: "1"}
	genuine, err := k.Encrypt(context.Background(), field, "110101199003071234")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add("pii1:1:0011223344556677:AAAA")
	f.Add("pii1:01:0011223344556677:" + strings.Repeat("A", 40))
	f.Add("pii1:1:00112233445566GG:")
	f.Fuzz(func(t *testing.T, s string) {
		v, id, sealed, err := ParseCiphertext(s)
		if err == nil {
			if back := "pii1:" + itoa(v) + ":" + id + ":" + b64(sealed); back != s {
				t.Fatalf("non-canonical form accepted: %q (canonical %q)", s, back)
			}
		}
		pt, err := k.Decrypt(context.Background(), field, s)
		if err == nil && (s != genuine || pt != "110101199003071234") {
			t.Fatalf("forged value decrypted: %q → %q", s, pt)
		}
	})
}

func itoa(v int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// FuzzNormalise: normalising is idempotent and yields only the documented shapes.
func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"+86 138-1234-5678", "11010119900307123x", "A123456(7)", "８６", "0086"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := NormalisePhone(s); err == nil {
			if len(n) != 11 || n[0] != '1' {
				t.Fatalf("phone %q → %q", s, n)
			}
			if again, err := NormalisePhone(n); err != nil || again != n {
				t.Fatalf("phone not idempotent: %q", n)
			}
		}
		if n, err := NormaliseIDNumber(s); err == nil {
			if strings.ToUpper(n) != n || strings.TrimSpace(n) != n {
				t.Fatalf("id %q → %q", s, n)
			}
			if again, err := NormaliseIDNumber(n); err != nil || again != n {
				t.Fatalf("id not idempotent: %q", n)
			}
		}
	})
}
