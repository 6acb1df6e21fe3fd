// Package gm is the platform's thin layer over github.com/emmansun/gmsm: SM2 signatures
// and public-key encryption, SM3 hashing and HMAC-SM3, SM4-GCM, and SM2 key files.
//
// Wire defaults (crypto.md §8.3): SM2 signatures are ASN.1 DER SEQUENCE{r,s} over the raw
// message with Z_A computed from the default user ID "1234567812345678"; SM2 ciphertexts
// are C1C3C2 in ASN.1 (decryption also accepts plain C1C3C2). RawSignature/DERSignature
// convert to the 64-byte r‖s form some partner gateways use.
//
// Signing and decryption take crypto.Signer / crypto.Decrypter so a key held in a
// certified HSM or KMS can stand in for *sm2.PrivateKey.
//
// Every process that uses these algorithms runs SelfTest once at start and refuses to
// start when it fails.
package gm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// UID is the default SM2 user ID (GB/T 35276), used for every signature of the platform.
const UID = "1234567812345678"

// ErrDecrypt is the only error decryption reports: it does not say which check failed.
var ErrDecrypt = errors.New("gm: decryption failed")

// GenerateKey returns a new SM2 private key from crypto/rand.
func GenerateKey() (*sm2.PrivateKey, error) { return sm2.GenerateKey(rand.Reader) }

// Sign returns the SM2-with-SM3 signature (ASN.1 DER) of msg under the default UID.
// s is an *sm2.PrivateKey or any crypto.Signer for an SM2 key that honours
// *sm2.SM2SignerOption (the digest is then computed by the signer, Z_A included).
func Sign(s crypto.Signer, msg []byte) ([]byte, error) {
	if s == nil {
		return nil, errors.New("gm: no signing key")
	}
	return s.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
}

// Verify reports whether sig is a valid SM2-with-SM3 DER signature of msg by pub under
// the default UID. It never panics on malformed input.
func Verify(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if pub == nil || !sm2.IsSM2PublicKey(pub) || len(sig) == 0 || len(sig) > 128 {
		return false
	}
	return sm2.VerifyASN1WithSM2(pub, nil, msg, sig)
}

// Encrypt encrypts msg to pub with SM2 (C1C3C2, ASN.1).
func Encrypt(pub *ecdsa.PublicKey, msg []byte) ([]byte, error) {
	if pub == nil || !sm2.IsSM2PublicKey(pub) {
		return nil, errors.New("gm: not an SM2 public key")
	}
	return sm2.EncryptASN1(rand.Reader, pub, msg)
}

// maxSM2Ciphertext bounds what Decrypt looks at; the platform only SM2-encrypts keys.
const maxSM2Ciphertext = 1024

// Decrypt decrypts an SM2 ciphertext (ASN.1 or plain C1C3C2). Any failure is ErrDecrypt.
func Decrypt(d crypto.Decrypter, ct []byte) ([]byte, error) {
	if d == nil || len(ct) == 0 || len(ct) > maxSM2Ciphertext {
		return nil, ErrDecrypt
	}
	pt, err := d.Decrypt(rand.Reader, ct, nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// KeyID names an SM2 public key: the first 8 bytes of SM3 over its uncompressed point,
// in hex. Key IDs let both sides rotate keys with an overlap.
func KeyID(pub *ecdsa.PublicKey) string {
	if pub == nil || pub.X == nil || pub.Y == nil {
		return ""
	}
	pt := make([]byte, 65)
	pt[0] = 4
	pub.X.FillBytes(pt[1:33])
	pub.Y.FillBytes(pt[33:])
	sum := sm3.Sum(pt)
	return hex.EncodeToString(sum[:8])
}

type rs struct{ R, S *big.Int }

// RawSignature converts a DER signature to the 64-byte r‖s form.
func RawSignature(der []byte) ([]byte, error) {
	var v rs
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil || v.R.Sign() <= 0 || v.S.Sign() <= 0 ||
		v.R.BitLen() > 256 || v.S.BitLen() > 256 {
		return nil, errors.New("gm: not an SM2 DER signature")
	}
	out := make([]byte, 64)
	v.R.FillBytes(out[:32])
	v.S.FillBytes(out[32:])
	return out, nil
}

// DERSignature converts a 64-byte r‖s signature to DER.
func DERSignature(raw []byte) ([]byte, error) {
	if len(raw) != 64 {
		return nil, fmt.Errorf("gm: raw signature must be 64 bytes, got %d", len(raw))
	}
	v := rs{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])}
	if v.R.Sign() == 0 || v.S.Sign() == 0 {
		return nil, errors.New("gm: zero signature component")
	}
	return asn1.Marshal(v)
}
