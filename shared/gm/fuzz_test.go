package gm

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// FuzzSM2Decrypt feeds arbitrary bytes to SM2 ciphertext decoding (ASN.1 and plain
// C1C3C2). It must never panic, and anything it accepts must be the one message that was
// really encrypted: forging a ciphertext needs C3 = SM3(x2‖M‖y2) to match.
func FuzzSM2Decrypt(f *testing.F) {
	priv, err := sm2.NewPrivateKey(unhex(katSM2D))
	if err != nil {
		f.Fatal(err)
	}
	msg := []byte("sm4 session key!")
	asn, _ := Encrypt(&priv.PublicKey, msg)
	plain, _ := sm2.Encrypt(rand.Reader, &priv.PublicKey, msg, nil)
	f.Add(asn)
	f.Add(plain)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte{0x04})
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := Decrypt(priv, ct)
		if err == nil && !bytes.Equal(pt, msg) {
			t.Fatalf("accepted a ciphertext of another message: %x", pt)
		}
	})
}

// FuzzRawSignature: DER ↔ r‖s conversion never panics and round-trips what it accepts.
func FuzzRawSignature(f *testing.F) {
	f.Add(unhex(katSM2Sig))
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		raw, err := RawSignature(der)
		if err != nil {
			return
		}
		back, err := DERSignature(raw)
		if err != nil {
			t.Fatalf("accepted %x but cannot convert back: %v", der, err)
		}
		raw2, err := RawSignature(back)
		if err != nil || !bytes.Equal(raw, raw2) {
			t.Fatalf("round trip differs")
		}
	})
}
