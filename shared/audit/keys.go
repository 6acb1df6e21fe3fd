package audit

import (
	"crypto/ecdsa"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm2"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/secrets"
)

// LoadSigner reads the checkpoint-signing key from secrets.
func LoadSigner(sec secrets.Reader) (*sm2.PrivateKey, error) {
	text, err := sec.Read(SecretSignKey)
	if err != nil {
		return nil, err
	}
	k, err := gm.ParsePrivateKeyPEM([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretSignKey, err)
	}
	return k, nil
}

// LoadPublicKey reads the key that verifies checkpoints: audit-sign-public-key, or the
// public half of audit-sign-key when only that is mounted.
func LoadPublicKey(sec secrets.Reader) (*ecdsa.PublicKey, error) {
	text, err := sec.Optional(SecretPublicKey)
	if err != nil {
		return nil, err
	}
	if text != "" {
		pub, err := gm.ParsePublicKeyPEM([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", SecretPublicKey, err)
		}
		return pub, nil
	}
	k, err := LoadSigner(sec)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("neither %s nor %s is mounted", SecretPublicKey, SecretSignKey), err)
	}
	return &k.PublicKey, nil
}

// FromSecrets returns the Log of a function instance: it signs checkpoints when the
// audit-sign-key secret is mounted, and appends without checkpoints when it is not.
func FromSecrets(sec secrets.Reader) (*Log, error) {
	l := &Log{}
	k, err := sec.Optional(SecretSignKey)
	if err != nil || k == "" {
		return l, err
	}
	signer, err := LoadSigner(sec)
	if err != nil {
		return nil, err
	}
	l.Signer = signer
	return l, nil
}
