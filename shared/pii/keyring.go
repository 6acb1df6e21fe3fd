package pii

import (
	"context"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/secrets"
)

// ErrDecrypt is the only error a failed decryption reports (wrong row, tampering,
// unknown or retired key); it never contains the value.
var ErrDecrypt = errors.New("pii: value does not decrypt")

// Field is where a value lives; it is the additional data of its encryption.
type Field struct {
	Table  string
	Column string
	Row    string // the row's primary key as text
}

func (f Field) valid() bool { return f.Table != "" && f.Column != "" && f.Row != "" }

// DEK is a data key as stored: wrapped by KEK version KEKVersion.
type DEK struct {
	ID         string
	KEKVersion int
	Wrapped    []byte
	CreatedAt  time.Time
}

// DEKStore keeps wrapped data keys (Postgres: PGStore; tests: MemStore).
type DEKStore interface {
	// Newest returns the newest DEK under kekVersion created after since, or nil.
	Newest(ctx context.Context, kekVersion int, since time.Time) (*DEK, error)
	Get(ctx context.Context, id string) (*DEK, error)
	Insert(ctx context.Context, d *DEK) error
}

// Keyring encrypts and decrypts fields and computes blind indexes.
type Keyring struct {
	keks  *KEKs
	index []byte
	store DEKStore
	// MaxDEKAge: a DEK older than this is no longer used for new values (default 30 days).
	MaxDEKAge time.Duration

	mu      sync.Mutex
	aeads   map[string]cipher.AEAD // unwrapped DEKs by id
	current *DEK
}

// NewKeyring returns a keyring. indexKey must be at least 32 bytes and not a KEK.
func NewKeyring(keks *KEKs, indexKey []byte, store DEKStore) (*Keyring, error) {
	if keks == nil || store == nil {
		return nil, errors.New("pii: keyring needs KEKs and a DEK store")
	}
	if len(indexKey) < 32 {
		return nil, errors.New("pii: index key must have at least 32 bytes")
	}
	return &Keyring{keks: keks, index: indexKey, store: store, MaxDEKAge: 30 * 24 * time.Hour,
		aeads: map[string]cipher.AEAD{}}, nil
}

// FromSecrets reads pii-kek and pii-index-key and keeps DEKs in store.
func FromSecrets(sec secrets.Reader, store DEKStore) (*Keyring, error) {
	text, err := sec.Read(SecretKEK)
	if err != nil {
		return nil, err
	}
	keks, err := ParseKEKs(text)
	if err != nil {
		return nil, err
	}
	if text, err = sec.Read(SecretIndexKey); err != nil {
		return nil, err
	}
	idx, err := gm.DecodeHexKey(text, 32, false)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretIndexKey, err)
	}
	return NewKeyring(keks, idx, store)
}

// ActiveVersion is the KEK version new values are encrypted under.
func (k *Keyring) ActiveVersion() int { return k.keks.Active() }

const prefix = "pii1:"

func dekAAD(id string, kekVersion int) []byte {
	return gm.LengthPrefixed("pii-dek/v1", id, strconv.Itoa(kekVersion))
}

func valueAAD(f Field, kekVersion int, dekID string) []byte {
	return gm.LengthPrefixed("pii-value/v1", f.Table, f.Column, f.Row, strconv.Itoa(kekVersion), dekID)
}

// unwrap returns the AEAD of DEK id, checking that it is wrapped by kekVersion.
func (k *Keyring) unwrap(ctx context.Context, id string, kekVersion int) (cipher.AEAD, error) {
	k.mu.Lock()
	a, ok := k.aeads[id]
	k.mu.Unlock()
	if ok {
		return a, nil
	}
	kek, ok := k.keks.keys[kekVersion]
	if !ok {
		return nil, ErrDecrypt // retired or unknown version
	}
	d, err := k.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if d == nil || d.KEKVersion != kekVersion {
		return nil, ErrDecrypt
	}
	raw, err := gm.OpenKey(kek, d.Wrapped, dekAAD(d.ID, d.KEKVersion))
	if err != nil {
		return nil, ErrDecrypt
	}
	if a, err = gm.NewGCM(raw); err != nil {
		return nil, ErrDecrypt
	}
	k.mu.Lock()
	k.aeads[id] = a
	k.mu.Unlock()
	return a, nil
}

// currentDEK returns the DEK for new values: the newest young enough under the active
// KEK, else a new one.
func (k *Keyring) currentDEK(ctx context.Context) (*DEK, cipher.AEAD, error) {
	active := k.keks.Active()
	now := time.Now()
	k.mu.Lock()
	cur := k.current
	k.mu.Unlock()
	if cur != nil && cur.KEKVersion == active && now.Sub(cur.CreatedAt) < k.MaxDEKAge {
		a, err := k.unwrap(ctx, cur.ID, cur.KEKVersion)
		return cur, a, err
	}
	d, err := k.store.Newest(ctx, active, now.Add(-k.MaxDEKAge))
	if err != nil {
		return nil, nil, err
	}
	if d == nil {
		if d, err = k.newDEK(ctx, active); err != nil {
			return nil, nil, err
		}
	}
	a, err := k.unwrap(ctx, d.ID, d.KEKVersion)
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	k.current = d
	k.mu.Unlock()
	return d, a, nil
}

func (k *Keyring) newDEK(ctx context.Context, version int) (*DEK, error) {
	raw, err := gm.RandomKey(gm.SM4KeySize)
	if err != nil {
		return nil, err
	}
	idb, err := gm.RandomKey(8)
	if err != nil {
		return nil, err
	}
	d := &DEK{ID: hex.EncodeToString(idb), KEKVersion: version, CreatedAt: time.Now().Truncate(time.Microsecond)}
	if d.Wrapped, err = gm.SealKey(k.keks.keys[version], raw, dekAAD(d.ID, version)); err != nil {
		return nil, err
	}
	if err := k.store.Insert(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Encrypt encrypts plaintext for field f under the current DEK.
func (k *Keyring) Encrypt(ctx context.Context, f Field, plaintext string) (string, error) {
	if !f.valid() {
		return "", errors.New("pii: field needs table, column and row")
	}
	d, a, err := k.currentDEK(ctx)
	if err != nil {
		return "", err
	}
	sealed, err := gm.Seal(a, []byte(plaintext), valueAAD(f, d.KEKVersion, d.ID))
	if err != nil {
		return "", err
	}
	return prefix + strconv.Itoa(d.KEKVersion) + ":" + d.ID + ":" + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// ParseCiphertext splits a stored value into its KEK version, DEK id and sealed bytes.
func ParseCiphertext(s string) (kekVersion int, dekID string, sealed []byte, err error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(s) > 1<<20 {
		return 0, "", nil, ErrDecrypt
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return 0, "", nil, ErrDecrypt
	}
	v, err := strconv.Atoi(parts[0])
	if err != nil || v < 1 || strconv.Itoa(v) != parts[0] {
		return 0, "", nil, ErrDecrypt
	}
	if len(parts[1]) != 16 {
		return 0, "", nil, ErrDecrypt
	}
	if _, err := hex.DecodeString(parts[1]); err != nil || strings.ToLower(parts[1]) != parts[1] {
		return 0, "", nil, ErrDecrypt
	}
	sealed, err = base64.RawURLEncoding.Strict().DecodeString(parts[2])
	// The decoder skips CR and LF; only the canonical text is a stored value.
	if err != nil || len(sealed) < gm.GCMNonceSize+gm.GCMTagSize || base64.RawURLEncoding.EncodeToString(sealed) != parts[2] {
		return 0, "", nil, ErrDecrypt
	}
	return v, parts[1], sealed, nil
}

// Decrypt returns the plaintext of a stored value of field f. A value of another row or
// column, a tampered value, or one whose KEK version was retired fails with ErrDecrypt;
// a store outage is returned as is.
func (k *Keyring) Decrypt(ctx context.Context, f Field, stored string) (string, error) {
	v, id, sealed, err := ParseCiphertext(stored)
	if err != nil {
		return "", err
	}
	a, err := k.unwrap(ctx, id, v)
	if err != nil {
		return "", err
	}
	pt, err := gm.Open(a, sealed, valueAAD(f, v, id))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

// NeedsRewrap reports whether a stored value is under an older KEK version.
func (k *Keyring) NeedsRewrap(stored string) bool {
	v, _, _, err := ParseCiphertext(stored)
	return err == nil && v < k.keks.Active()
}

// Rewrap re-encrypts a stored value under the current DEK of the active KEK version.
func (k *Keyring) Rewrap(ctx context.Context, f Field, stored string) (string, error) {
	pt, err := k.Decrypt(ctx, f, stored)
	if err != nil {
		return "", err
	}
	return k.Encrypt(ctx, f, pt)
}

// IndexSize is the length of a blind index.
const IndexSize = 16

// BlindIndex is HMAC-SM3(index key, kind ‖ normalised value), truncated to 16 bytes.
func (k *Keyring) BlindIndex(kind Kind, value string) ([]byte, error) {
	n, err := Normalise(kind, value)
	if err != nil {
		return nil, err
	}
	return gm.HMAC(k.index, gm.LengthPrefixed("pii-bidx/v1", string(kind), n))[:IndexSize], nil
}
