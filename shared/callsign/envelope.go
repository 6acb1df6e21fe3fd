package callsign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/sscard/platform/shared/gm"
)

// envelope is the body of an enveloped request (Key set) or response (Key empty).
type envelope struct {
	V    int    `json:"v"`
	Key  string `json:"key,omitempty"`
	IV   string `json:"iv"`
	CT   string `json:"ct"`
	Type string `json:"type,omitempty"`
}

// envelopeParts is a parsed envelope.
type envelopeParts struct {
	key  []byte // SM2 ciphertext of the session key (requests only)
	iv   []byte
	ct   []byte // ciphertext ‖ tag
	typ  string
	size int
}

var errEnvelope = errors.New("callsign: malformed envelope")

// Bounds of an envelope: the SM2 ciphertext of a 16-byte key is about 110–120 bytes in
// ASN.1 and 113 plain; the whole body is capped by the function's max body size.
const (
	minWrappedKey = 96
	maxWrappedKey = 160
)

// parseEnvelope reads an envelope strictly: one JSON object, known members only, version
// 1, standard base64, a 12-byte IV, a ciphertext at least one tag long, and a session
// key exactly when wantKey.
func parseEnvelope(body []byte, wantKey bool) (*envelopeParts, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var e envelope
	if err := dec.Decode(&e); err != nil {
		return nil, errEnvelope
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 { // trailing data after the object
		return nil, errEnvelope
	}
	if e.V != 1 || (e.Key != "") != wantKey || !validContentType(e.Type, true) {
		return nil, errEnvelope
	}
	p := &envelopeParts{typ: e.Type, size: len(body)}
	var err error
	if wantKey {
		if p.key, err = decode64(e.Key); err != nil ||
			len(p.key) < minWrappedKey || len(p.key) > maxWrappedKey {
			return nil, errEnvelope
		}
	}
	if p.iv, err = decode64(e.IV); err != nil || len(p.iv) != gm.GCMNonceSize {
		return nil, errEnvelope
	}
	if p.ct, err = decode64(e.CT); err != nil || len(p.ct) < gm.GCMTagSize {
		return nil, errEnvelope
	}
	return p, nil
}

// sealEnvelope encrypts plaintext under sessionKey; wrappedKey is included for requests.
func sealEnvelope(sessionKey, wrappedKey, plaintext, aad []byte, typ string) ([]byte, error) {
	aead, err := gm.NewGCM(sessionKey)
	if err != nil {
		return nil, err
	}
	sealed, err := gm.Seal(aead, plaintext, aad)
	if err != nil {
		return nil, err
	}
	e := envelope{V: 1, IV: base64.StdEncoding.EncodeToString(sealed[:gm.GCMNonceSize]),
		CT: base64.StdEncoding.EncodeToString(sealed[gm.GCMNonceSize:]), Type: typ}
	if wrappedKey != nil {
		e.Key = base64.StdEncoding.EncodeToString(wrappedKey)
	}
	return json.Marshal(e)
}

// open decrypts the envelope body with sessionKey.
func (p *envelopeParts) open(sessionKey, aad []byte) ([]byte, error) {
	aead, err := gm.NewGCM(sessionKey)
	if err != nil {
		return nil, gm.ErrDecrypt
	}
	return aead.Open(nil, p.iv, p.ct, aad)
}

// unwrapKey recovers the session key of a request envelope.
func (p *envelopeParts) unwrapKey(d crypto.Decrypter) ([]byte, error) {
	k, err := gm.Decrypt(d, p.key)
	if err != nil || len(k) != gm.SM4KeySize {
		return nil, gm.ErrDecrypt
	}
	return k, nil
}

// newSessionKey makes a fresh SM4 key and wraps it for the server.
func newSessionKey(serverEnc *ecdsa.PublicKey) (key, wrapped []byte, err error) {
	if key, err = gm.RandomKey(gm.SM4KeySize); err != nil {
		return nil, nil, err
	}
	if wrapped, err = gm.Encrypt(serverEnc, key); err != nil {
		return nil, nil, err
	}
	return key, wrapped, nil
}

// decode64 is strict standard base64: the decoder skips CR and LF, so the text must also
// be what encoding the bytes gives back.
func decode64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errEnvelope
	}
	return b, nil
}
