package callsign

import (
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/secrets"
)

// Secret names (files under secret_mount_path; infra/cmd/keygen writes local ones).
const (
	// SecretSignKey: the server's SM2 response-signing key, PKCS#8 PEM.
	SecretSignKey = "callsign-sign-key"
	// SecretEncKey: the server's SM2 envelope keys, PKCS#8 PEM; several blocks during a
	// rotation (all decrypt; callers are given the newest public key).
	SecretEncKey = "callsign-enc-key"
	// SecretRegistryMAC: HMAC-SM3 key (hex, ≥ 32 bytes) over every caller-registry row.
	SecretRegistryMAC = "callsign-registry-mac-key"
	// SecretSignPublic and SecretEncPublic: the public halves (PKIX PEM) handed to callers.
	SecretSignPublic = "callsign-sign-public-key"
	SecretEncPublic  = "callsign-enc-public-key"
)

// ServerKeys are a function's call-signing keys.
type ServerKeys struct {
	Sign        *sm2.PrivateKey
	Enc         []*sm2.PrivateKey
	RegistryMAC []byte
}

// LoadServerKeys reads the server keys from secrets. Errors name the secret, never its content.
func LoadServerKeys(sec secrets.Reader) (*ServerKeys, error) {
	var k ServerKeys
	text, err := sec.Read(SecretSignKey)
	if err != nil {
		return nil, err
	}
	if k.Sign, err = gm.ParsePrivateKeyPEM([]byte(text)); err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretSignKey, err)
	}
	if text, err = sec.Read(SecretEncKey); err != nil {
		return nil, err
	}
	if k.Enc, err = gm.ParsePrivateKeysPEM([]byte(text)); err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretEncKey, err)
	}
	if text, err = sec.Read(SecretRegistryMAC); err != nil {
		return nil, err
	}
	if k.RegistryMAC, err = gm.DecodeHexKey(text, 32, false); err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretRegistryMAC, err)
	}
	return &k, nil
}

// Decrypters returns the envelope keys as crypto.Decrypter.
func (k *ServerKeys) Decrypters() []crypto.Decrypter {
	out := make([]crypto.Decrypter, len(k.Enc))
	for i, e := range k.Enc {
		out[i] = e
	}
	return out
}

// FromDeps builds the Verifier of a function from its warm dependencies: keys from its
// secrets, the caller registry from Postgres, nonces in Redis, the window from the
// variable callsign_window (default 300s), Retry-After and error mapping from the
// platform. The function must declare Needs{Postgres: true, Redis: true}.
func FromDeps(d *platform.Deps) (*Verifier, error) {
	if d.Postgres == nil || d.Redis == nil {
		return nil, errors.New("callsign: the function needs Postgres (caller registry) and Redis (nonces)")
	}
	keys, err := LoadServerKeys(d.Secrets)
	if err != nil {
		return nil, err
	}
	window := DefaultWindow
	if d.Env != nil {
		if v, ok := d.Env.Lookup("callsign_window"); ok {
			w, err := envconf.ParseDuration(v)
			if err != nil || w < 10*time.Second || w > time.Hour {
				return nil, errors.New("callsign_window: want a duration between 10s and 1h")
			}
			window = w
		}
	}
	return New(Config{
		Function:   d.Name,
		Registry:   &PGRegistry{DB: d.Postgres, MACKey: keys.RegistryMAC, Log: d.Log},
		Nonces:     RedisNonces{Client: d.Redis},
		SignKey:    keys.Sign,
		EncKeys:    keys.Decrypters(),
		Window:     window,
		RetryAfter: d.Config.RetryAfter,
		Log:        d.Log,
		MapError:   d.Outage,
	})
}
