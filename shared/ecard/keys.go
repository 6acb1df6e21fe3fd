package ecard

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// Secret names.
const (
	// PlatformKeySecret is the e-card platform's SM2 public key (PEM, PKIX) that our side
	// trusts. In production it is the key the platform publishes to its channels.
	PlatformKeySecret = "ecard-platform-public-key"
	// LocalKeySecret is the local authority's SM2 private key (PEM, PKCS#8); only local
	// and test deployments have it.
	LocalKeySecret = "ecard-local-private-key"
)

// ParsePublicKey reads an SM2 public key from PEM.
func ParsePublicKey(pemText string) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := smx509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, errors.New("not an SM2 public key")
	}
	return pub, nil
}

// ParsePrivateKey reads an SM2 private key from PEM (PKCS#8).
func ParsePrivateKey(pemText string) (*sm2.PrivateKey, error) {
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := smx509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(*sm2.PrivateKey)
	if !ok {
		return nil, errors.New("not an SM2 private key")
	}
	return priv, nil
}

// EnsureLocalKeys writes a fresh local-authority key pair into the secrets directory dir
// unless both secrets exist. Local and test deployments only: keys are generated on the
// machine, never shipped.
func EnsureLocalKeys(dir string) error {
	priv, pub := filepath.Join(dir, LocalKeySecret), filepath.Join(dir, PlatformKeySecret)
	_, e1 := os.Stat(priv)
	_, e2 := os.Stat(pub)
	if e1 == nil && e2 == nil {
		return nil
	}
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := smx509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", LocalKeySecret, err)
	}
	return os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
}
