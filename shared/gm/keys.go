package gm

import (
	"crypto/ecdsa"
	"encoding/pem"
	"errors"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// PEM block types.
const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
)

// ParsePrivateKeysPEM reads every SM2 private key (unencrypted PKCS#8, "PRIVATE KEY")
// from PEM text, in order. Several blocks in one secret let a key rotate with overlap.
func ParsePrivateKeysPEM(text []byte) ([]*sm2.PrivateKey, error) {
	var out []*sm2.PrivateKey
	for {
		var b *pem.Block
		b, text = pem.Decode(text)
		if b == nil {
			break
		}
		if b.Type != pemPrivate {
			return nil, errors.New("gm: want PEM blocks of type PRIVATE KEY (PKCS#8)")
		}
		k, err := smx509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, errors.New("gm: PKCS#8 private key could not be parsed")
		}
		priv, ok := k.(*sm2.PrivateKey)
		if !ok {
			return nil, errors.New("gm: not an SM2 private key")
		}
		out = append(out, priv)
	}
	if len(out) == 0 {
		return nil, errors.New("gm: no PEM private key")
	}
	return out, nil
}

// ParsePrivateKeyPEM reads the first SM2 private key of PEM text.
func ParsePrivateKeyPEM(text []byte) (*sm2.PrivateKey, error) {
	keys, err := ParsePrivateKeysPEM(text)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// ParsePublicKeyPEM reads an SM2 public key (PKIX, "PUBLIC KEY").
func ParsePublicKeyPEM(text []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(text)
	if b == nil || b.Type != pemPublic {
		return nil, errors.New("gm: no PEM PUBLIC KEY block")
	}
	k, err := smx509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, errors.New("gm: public key could not be parsed")
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, errors.New("gm: not an SM2 public key")
	}
	return pub, nil
}

// MarshalPrivateKeyPEM writes priv as unencrypted PKCS#8 PEM.
func MarshalPrivateKeyPEM(priv *sm2.PrivateKey) ([]byte, error) {
	der, err := smx509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der}), nil
}

// MarshalPublicKeyPEM writes pub as PKIX PEM.
func MarshalPublicKeyPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}
