// Package ecard is the national electronic social security card platform (电子社保卡) as
// the scan login uses it. Its channel interface is not public, so the contract is ours:
// create a channel QR for a login session, query the authorization result, query the
// e-card holder's information. Every answer from the platform is signed with SM2 (SM3
// digest, default user id) and verified with the platform's public key before use.
//
// Local is the built-in implementation: a local e-card authority that plays the phone
// app and the platform for development and tests. Production configures a real
// platform adapter instead (ecard_authority setting); Local is never a silent default.
package ecard

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

// Platform is the part of the e-card platform the login flow needs.
type Platform interface {
	// ChannelQR registers a login session and returns the content of its QR code (a URL
	// the e-card app opens).
	ChannelQR(ctx context.Context, sessionID string, expiresAt time.Time) (string, error)
	// AuthResult returns the signed authorization result of a session.
	AuthResult(ctx context.Context, sessionID string) (Assertion, error)
	// CardInfo returns the signed holder information of an e-card.
	CardInfo(ctx context.Context, ecardNo string) (CardInfo, error)
}

// Result states the platform reports.
const (
	StateScanned   = "scanned"
	StateConfirmed = "confirmed"
	StateCancelled = "cancelled"
)

// ErrSignature reports an answer whose signature does not verify: never act on it.
var ErrSignature = errors.New("e-card platform signature does not verify")

// ErrNotFound reports an unknown session or e-card.
var ErrNotFound = errors.New("not known to the e-card platform")

// Assertion is the platform's statement about a login session.
type Assertion struct {
	SessionID string    `json:"sessionId"`
	State     string    `json:"state"`
	ECardNo   string    `json:"ecardNo,omitempty"` // set once scanned
	IssuedAt  time.Time `json:"issuedAt"`
	Nonce     string    `json:"nonce"`
	Signature string    `json:"signature"` // base64 DER SM2 signature over Canonical()
}

// Canonical is the byte string the platform signs: fixed field order, one per line.
func (a Assertion) Canonical() []byte {
	return []byte(strings.Join([]string{"ecard-assertion/1", a.SessionID, a.State, a.ECardNo,
		a.IssuedAt.UTC().Format(time.RFC3339Nano), a.Nonce}, "\n"))
}

// CardInfo is what the platform says about an e-card holder. IDNumber and Name are
// personal data: callers encrypt or mask them and never log them.
type CardInfo struct {
	ECardNo   string    `json:"ecardNo"`
	IDNumber  string    `json:"idNumber"`
	Name      string    `json:"name"`
	SignLevel int       `json:"signLevel"` // 1: identity only; 2: linked to the bank account
	IssuedAt  time.Time `json:"issuedAt"`
	Signature string    `json:"signature"`
}

// Canonical is the byte string the platform signs.
func (c CardInfo) Canonical() []byte {
	return []byte(strings.Join([]string{"ecard-cardinfo/1", c.ECardNo, c.IDNumber, c.Name,
		fmt.Sprint(c.SignLevel), c.IssuedAt.UTC().Format(time.RFC3339Nano)}, "\n"))
}

// Verifier checks platform signatures and their freshness.
type Verifier struct {
	Key    *ecdsa.PublicKey
	MaxAge time.Duration // answers older than this are refused [5m]
}

// Assertion verifies a and its age.
func (v Verifier) Assertion(a Assertion, now time.Time) error {
	return v.check(a.Canonical(), a.Signature, a.IssuedAt, now)
}

// CardInfo verifies c and its age.
func (v Verifier) CardInfo(c CardInfo, now time.Time) error {
	return v.check(c.Canonical(), c.Signature, c.IssuedAt, now)
}

func (v Verifier) check(msg []byte, sigB64 string, issued, now time.Time) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || v.Key == nil || !sm2.VerifyASN1WithSM2(v.Key, nil, msg, sig) {
		return ErrSignature
	}
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = 5 * time.Minute
	}
	if d := now.Sub(issued); d > maxAge || d < -maxAge {
		return fmt.Errorf("%w: issued %s from now", ErrSignature, d.Round(time.Second))
	}
	return nil
}

// sign is the platform side of the scheme (used by Local).
func sign(key *sm2.PrivateKey, msg []byte) (string, error) {
	sig, err := key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}
