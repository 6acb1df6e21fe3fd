package gm

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
)

func TestSelfTest(t *testing.T) {
	if err := SelfTest(); err != nil {
		t.Fatal(err)
	}
	if err := selfTest(); err != nil { // not through the Once
		t.Fatal(err)
	}
}

// The pinned HMAC-SM3 vector must equal RFC 2104 built by hand from SM3.
func TestHMACMatchesHandBuiltConstruction(t *testing.T) {
	key, msg := []byte(katHMACKey), []byte(katSM2Msg)
	block := make([]byte, 64) // SM3 block size
	copy(block, key)
	ipad, opad := make([]byte, 64), make([]byte, 64)
	for i := range block {
		ipad[i], opad[i] = block[i]^0x36, block[i]^0x5c
	}
	inner := sm3.Sum(append(ipad, msg...))
	outer := sm3.Sum(append(opad, inner[:]...))
	if got := hex.EncodeToString(outer[:]); got != katHMAC {
		t.Fatalf("hand-built HMAC-SM3 %s, pinned %s", got, katHMAC)
	}
	if !HMACEqual(HMAC(key, msg), outer[:]) {
		t.Fatal("HMAC differs from the hand-built construction")
	}
	if HMACEqual(HMAC(key, msg, []byte("x")), outer[:]) {
		t.Fatal("HMAC ignores a part")
	}
}

func TestSignVerifyAndConversions(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := GenerateKey()
	msg := []byte("POST\n/cards/1/loss\n")
	sig, err := Sign(k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(&k.PublicKey, msg, sig) {
		t.Fatal("valid signature rejected")
	}
	if Verify(&other.PublicKey, msg, sig) {
		t.Fatal("signature accepted under another key")
	}
	if Verify(&k.PublicKey, append(msg, '!'), sig) {
		t.Fatal("signature accepted for another message")
	}
	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1
	if Verify(&k.PublicKey, msg, bad) || Verify(&k.PublicKey, msg, nil) || Verify(nil, msg, sig) {
		t.Fatal("malformed input accepted")
	}
	raw, err := RawSignature(sig)
	if err != nil || len(raw) != 64 {
		t.Fatalf("raw: %v (%d bytes)", err, len(raw))
	}
	der, err := DERSignature(raw)
	if err != nil || !bytes.Equal(der, sig) {
		t.Fatalf("DER round trip: %v", err)
	}
	if _, err := DERSignature(raw[:63]); err == nil {
		t.Fatal("short raw signature accepted")
	}
	if _, err := RawSignature(append(bytes.Clone(sig), 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	k, _ := GenerateKey()
	other, _ := GenerateKey()
	msg := []byte("0123456789abcdef")
	ct, err := Encrypt(&k.PublicKey, msg)
	if err != nil {
		t.Fatal(err)
	}
	if ct[0] != 0x30 {
		t.Fatalf("want ASN.1 ciphertext, got first byte %#x", ct[0])
	}
	pt, err := Decrypt(k, ct)
	if err != nil || !bytes.Equal(pt, msg) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := Decrypt(other, ct); err != ErrDecrypt {
		t.Fatalf("other key: want ErrDecrypt, got %v", err)
	}
	for i := range []int{0, len(ct) / 2, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x40
		if _, err := Decrypt(k, bad); err == nil {
			t.Fatalf("altered byte %d accepted", i)
		}
	}
}

func TestSealOpen(t *testing.T) {
	key, _ := RandomKey(SM4KeySize)
	a, err := NewGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := Seal(a, []byte("secret"), []byte("aad"))
	s2, _ := Seal(a, []byte("secret"), []byte("aad"))
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals are equal: nonce not fresh")
	}
	if pt, err := Open(a, s1, []byte("aad")); err != nil || string(pt) != "secret" {
		t.Fatalf("open: %v", err)
	}
	if _, err := Open(a, s1, []byte("other")); err != ErrDecrypt {
		t.Fatal("wrong AAD accepted")
	}
	if _, err := Open(a, s1[:10], nil); err != ErrDecrypt {
		t.Fatal("short input accepted")
	}
	if _, err := NewGCM(key[:15]); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestPEMAndKeyID(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	p1, _ := MarshalPrivateKeyPEM(k1)
	p2, _ := MarshalPrivateKeyPEM(k2)
	keys, err := ParsePrivateKeysPEM(append(p1, p2...))
	if err != nil || len(keys) != 2 || !keys[1].Equal(k2) {
		t.Fatalf("two keys: %v", err)
	}
	pubPEM, _ := MarshalPublicKeyPEM(&k1.PublicKey)
	pub, err := ParsePublicKeyPEM(pubPEM)
	if err != nil || !pub.Equal(&k1.PublicKey) {
		t.Fatalf("public: %v", err)
	}
	if _, err := ParsePrivateKeyPEM(pubPEM); err == nil {
		t.Fatal("public key parsed as private")
	}
	id := KeyID(pub)
	if len(id) != 16 || id != KeyID(&k1.PublicKey) || id == KeyID(&k2.PublicKey) {
		t.Fatalf("key id %q", id)
	}
	if _, err := DecodeHexKey(strings.Repeat("ab", 16), 16, true); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeHexKey("zz", 16, false); err == nil || strings.Contains(err.Error(), "zz") {
		t.Fatalf("bad hex: %v", err)
	}
}
