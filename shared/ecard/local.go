package ecard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/redis/go-redis/v9"
)

// Local is the local e-card authority: it keeps channel QRs and holders in Redis (its own
// key space), lets a test or a developer "scan" and "confirm" a QR for a test person, and
// signs what it says with its own SM2 key — whose public half our side is configured to
// trust, exactly as with the real platform.
type Local struct {
	rdb    redis.UniversalClient
	key    *sm2.PrivateKey
	appURL string // what the QR encodes; the e-card app would open it
	ttl    time.Duration
}

// NewLocal returns the local authority. appURL is the base of QR contents.
func NewLocal(rdb redis.UniversalClient, key *sm2.PrivateKey, appURL string) *Local {
	return &Local{rdb: rdb, key: key, appURL: appURL, ttl: time.Hour}
}

func qrKey(session string) string     { return "ecard-local:qr:" + session }
func holderKey(ecardNo string) string { return "ecard-local:holder:" + ecardNo }

type qrRecord struct {
	State   string `json:"state"`
	ECardNo string `json:"ecardNo,omitempty"`
}

// ChannelQR implements Platform.
func (l *Local) ChannelQR(ctx context.Context, sessionID string, expiresAt time.Time) (string, error) {
	b, _ := json.Marshal(qrRecord{State: "waiting"})
	if err := l.rdb.Set(ctx, qrKey(sessionID), b, time.Until(expiresAt)+l.ttl).Err(); err != nil {
		return "", err
	}
	return l.appURL + "?" + url.Values{"channel": {"sscard"}, "session": {sessionID}}.Encode(), nil
}

// record reads what the authority knows about a session's QR.
func (l *Local) record(ctx context.Context, sessionID string) (qrRecord, error) {
	var rec qrRecord
	raw, err := l.rdb.Get(ctx, qrKey(sessionID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(raw, &rec)
}

// AuthResult implements Platform.
func (l *Local) AuthResult(ctx context.Context, sessionID string) (Assertion, error) {
	rec, err := l.record(ctx, sessionID)
	if err != nil {
		return Assertion{}, err
	}
	a := Assertion{SessionID: sessionID, State: rec.State, ECardNo: rec.ECardNo, IssuedAt: time.Now().UTC(), Nonce: randomNonce()}
	a.Signature, err = sign(l.key, a.Canonical())
	return a, err
}

// CardInfo implements Platform.
func (l *Local) CardInfo(ctx context.Context, ecardNo string) (CardInfo, error) {
	raw, err := l.rdb.Get(ctx, holderKey(ecardNo)).Bytes()
	if errors.Is(err, redis.Nil) {
		return CardInfo{}, ErrNotFound
	}
	if err != nil {
		return CardInfo{}, err
	}
	var c CardInfo
	if err := json.Unmarshal(raw, &c); err != nil {
		return CardInfo{}, err
	}
	c.IssuedAt = time.Now().UTC()
	c.Signature, err = sign(l.key, c.Canonical())
	return c, err
}

// Holder is a test person of the local authority.
type Holder struct {
	IDNumber string `json:"idNumber"`
	Name     string `json:"name"`
}

// Act plays the phone: the holder scans the session's QR (state "scanned"), confirms it
// ("confirmed") or declines ("cancelled"). It returns the platform's signed assertion,
// which is what the platform's notification carries.
func (l *Local) Act(ctx context.Context, sessionID, state string, h Holder) (Assertion, error) {
	if state != StateScanned && state != StateConfirmed && state != StateCancelled {
		return Assertion{}, fmt.Errorf("unknown state %q", state)
	}
	rec, err := l.record(ctx, sessionID)
	if err != nil {
		return Assertion{}, err
	}
	if state != StateCancelled {
		rec.ECardNo = ecardNumber(h.IDNumber)
		info, _ := json.Marshal(CardInfo{ECardNo: rec.ECardNo, IDNumber: h.IDNumber, Name: h.Name, SignLevel: 1})
		if err := l.rdb.Set(ctx, holderKey(rec.ECardNo), info, l.ttl).Err(); err != nil {
			return Assertion{}, err
		}
	}
	rec.State = state
	b, _ := json.Marshal(rec)
	if err := l.rdb.Set(ctx, qrKey(sessionID), b, redis.KeepTTL).Err(); err != nil {
		return Assertion{}, err
	}
	return l.AuthResult(ctx, sessionID)
}

// ecardNumber derives a stable e-card number for a test person without exposing the ID.
func ecardNumber(idNumber string) string {
	sum := sha256.Sum256([]byte("ecard-local/" + idNumber))
	return "E" + hex.EncodeToString(sum[:8])
}

func randomNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
