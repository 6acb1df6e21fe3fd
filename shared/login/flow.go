package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sscard/platform/shared/ecard"
	"github.com/sscard/platform/shared/mask"
)

// Registry finds the person record of an e-card holder by ID number. It returns "" and
// no error when the holder has no record here (registration needed).
type Registry interface {
	FindByIDNumber(ctx context.Context, idNumber string) (personID string, err error)
}

// Flow is the scan login from the QR to the session token.
type Flow struct {
	Sessions *Sessions
	Platform ecard.Platform
	Verify   ecard.Verifier
	People   Registry
	Now      func() time.Time
}

// Started is a new login QR.
type Started struct {
	Session
	QRContent string
}

func (f *Flow) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Start creates a session and registers its QR with the e-card platform.
func (f *Flow) Start(ctx context.Context) (Started, error) {
	s, err := f.Sessions.Create(ctx, f.now())
	if err != nil {
		return Started{}, err
	}
	content, err := f.Platform.ChannelQR(ctx, s.ID, s.ExpiresAt)
	if err != nil {
		return Started{}, fmt.Errorf("e-card platform: %w", err)
	}
	return Started{Session: s, QRContent: content}, nil
}

// Refresh replaces a QR: the old session is cancelled so it can no longer log anyone in.
func (f *Flow) Refresh(ctx context.Context, oldID string) (Started, error) {
	if err := f.Sessions.Cancel(ctx, oldID, f.now()); err != nil && !errors.Is(err, ErrIllegal) && !errors.Is(err, ErrUnknown) {
		return Started{}, err
	}
	return f.Start(ctx)
}

// Notify applies the platform's signed statement about a session. It trusts nothing it
// cannot verify: the assertion's signature, then the holder information's signature.
func (f *Flow) Notify(ctx context.Context, a ecard.Assertion) error {
	now := f.now()
	if err := f.Verify.Assertion(a, now); err != nil {
		return err
	}
	switch a.State {
	case ecard.StateScanned:
		_, err := f.Sessions.Transition(ctx, a.SessionID, Scanned, now)
		return err
	case ecard.StateCancelled:
		return f.Sessions.Cancel(ctx, a.SessionID, now)
	case ecard.StateConfirmed:
		info, err := f.Platform.CardInfo(ctx, a.ECardNo)
		if err != nil {
			return fmt.Errorf("e-card platform: %w", err)
		}
		if err := f.Verify.CardInfo(info, now); err != nil {
			return err
		}
		if info.ECardNo != a.ECardNo {
			return ecard.ErrSignature
		}
		person, err := f.People.FindByIDNumber(ctx, info.IDNumber)
		if err != nil {
			return err
		}
		unregistered := "0"
		if person == "" {
			unregistered = "1"
		}
		// Only masked forms are kept with the session: the page shows them, nothing more.
		_, err = f.Sessions.Transition(ctx, a.SessionID, Confirmed, now, "person", person, "unregistered", unregistered,
			"name", mask.Name(info.Name), "idNumber", mask.IDNumber(info.IDNumber))
		return err
	default:
		return fmt.Errorf("%w: unknown platform state %q", ErrIllegal, a.State)
	}
}
