// Package pii protects personal data at rest: ID numbers, phone numbers, names and
// addresses never reach Postgres, logs, object names or events in clear.
//
// # Field encryption
//
// A value is encrypted with SM4-GCM under a data key (DEK). DEKs are random SM4 keys
// stored in table pii_data_keys wrapped (SM4-GCM) by a key-encryption key (KEK) from the
// secret pii-kek, which holds numbered versions. The stored text is
//
//	pii1:<KEK version>:<DEK id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// and the GCM additional data binds it to table, column and row identity (and to its own
// prefix), so a value copied to another row or column does not decrypt.
//
// # Rotation
//
// Add a KEK version (a line "2:<hex>" in pii-kek) and restart: new values get a DEK
// wrapped by the newest KEK, old values still decrypt while their version's line stays.
// pii-rewrap (infra/cmd/pii-rewrap, RewrapColumn) re-encrypts every old value under the
// newest version; when it reports none left, remove the old line and retire its DEKs.
// A DEK also rotates by age (Keyring.MaxDEKAge, default 30 days) to stay far below the
// GCM random-nonce limit.
//
// # Blind index
//
// Equality lookup uses BlindIndex: HMAC-SM3 under the separate key pii-index-key over the
// normalised value (ID numbers trimmed and upper-cased, phone numbers as the 11-digit
// mainland number with or without +86/0086), truncated to 16 bytes. Query
// "WHERE id_no_bidx = $1", then decrypt the candidates. An index leaks equality, and the
// ID keyspace is small: keep the index key in the HSM/KMS in production and rate-limit
// lookups.
package pii

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sscard/platform/shared/gm"
)

// Secret names.
const (
	// SecretKEK holds the KEK versions, one per line: "<version>:<32 hex digits>".
	// Lines that are empty or start with "#" are ignored; the highest version is active.
	SecretKEK = "pii-kek"
	// SecretIndexKey is the blind-index HMAC-SM3 key, hex, at least 32 bytes.
	SecretIndexKey = "pii-index-key"
)

// KEKs are the key-encryption keys by version.
type KEKs struct {
	keys   map[int][]byte
	active int
}

// ParseKEKs reads the pii-kek secret. Errors name the line, never a key.
func ParseKEKs(text string) (*KEKs, error) {
	k := &KEKs{keys: map[int][]byte{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		vs, hexKey, ok := strings.Cut(line, ":")
		v, err := strconv.Atoi(strings.TrimSpace(vs))
		if !ok || err != nil || v < 1 || v > 1_000_000 {
			return nil, fmt.Errorf("pii-kek line %d: want <version>:<hex key> with version ≥ 1", n)
		}
		key, err := gm.DecodeHexKey(hexKey, gm.SM4KeySize, true)
		if err != nil {
			return nil, fmt.Errorf("pii-kek line %d: %w", n, err)
		}
		if _, dup := k.keys[v]; dup {
			return nil, fmt.Errorf("pii-kek line %d: version %d twice", n, v)
		}
		k.keys[v] = key
		k.active = max(k.active, v)
	}
	if k.active == 0 {
		return nil, errors.New("pii-kek: no key")
	}
	return k, nil
}

// Active is the version that wraps new data keys.
func (k *KEKs) Active() int { return k.active }

// Versions lists the versions present, ascending.
func (k *KEKs) Versions() []int {
	out := make([]int, 0, len(k.keys))
	for v := 1; len(out) < len(k.keys); v++ {
		if _, ok := k.keys[v]; ok {
			out = append(out, v)
		}
	}
	return out
}

// FormatKEK is one line of the pii-kek secret.
func FormatKEK(version int, key []byte) string {
	return fmt.Sprintf("%d:%x", version, key)
}
