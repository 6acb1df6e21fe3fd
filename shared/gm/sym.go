package gm

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// Sizes of the symmetric primitives.
const (
	SM4KeySize   = 16
	GCMNonceSize = 12
	GCMTagSize   = 16
	SM3Size      = 32
)

// SM3 returns the SM3 digest of the concatenation of parts.
func SM3(parts ...[]byte) [SM3Size]byte {
	h := sm3.New()
	for _, p := range parts {
		h.Write(p)
	}
	var out [SM3Size]byte
	h.Sum(out[:0])
	return out
}

// HMAC returns HMAC-SM3(key, concatenation of parts).
func HMAC(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sm3.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// HMACEqual compares two MACs in constant time.
func HMACEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// NewGCM returns SM4-GCM (12-byte nonce, 16-byte tag) under a 16-byte key.
func NewGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != SM4KeySize {
		return nil, fmt.Errorf("gm: SM4 key must be %d bytes", SM4KeySize)
	}
	blk, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// Seal encrypts plaintext with SM4-GCM under a fresh random nonce and returns
// nonce ‖ ciphertext ‖ tag.
func Seal(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, GCMNonceSize, GCMNonceSize+len(plaintext)+GCMTagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, plaintext, aad), nil
}

// Open reverses Seal. Any failure (short input, wrong key, wrong AAD, tampering) is ErrDecrypt.
func Open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < GCMNonceSize+GCMTagSize {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, sealed[:GCMNonceSize], sealed[GCMNonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealKey and OpenKey are Seal and Open for a raw 16-byte SM4 key.
func SealKey(key, plaintext, aad []byte) ([]byte, error) {
	a, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	return Seal(a, plaintext, aad)
}

// OpenKey: see SealKey.
func OpenKey(key, sealed, aad []byte) ([]byte, error) {
	a, err := NewGCM(key)
	if err != nil {
		return nil, ErrDecrypt
	}
	return Open(a, sealed, aad)
}

// RandomKey returns n random bytes.
func RandomKey(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// DecodeHexKey reads a key written as hex (the format keygen writes for symmetric
// secrets). It wants at least min bytes (and exactly min when exact is set); the error
// never contains the key text.
func DecodeHexKey(s string, min int, exact bool) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("gm: key is not hex")
	}
	if len(b) < min || exact && len(b) != min {
		return nil, fmt.Errorf("gm: key has %d bytes, want %d", len(b), min)
	}
	return b, nil
}

// LengthPrefixed concatenates parts, each preceded by its length as 4 bytes big-endian,
// so MAC and hash inputs built from several fields are unambiguous whatever the fields
// contain.
func LengthPrefixed(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
		out = append(out, p...)
	}
	return out
}
