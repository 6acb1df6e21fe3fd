package application

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/problem"
)

// PhotoKey is the object key of a photo in PhotoBucket: no personal data, only the day
// the application was made (China time), its id and the content hash, so an identical
// re-upload is the same object. The day leads: photos spread over a directory per day (a
// directory per application cost MinIO a directory more per PUT), and retention rules
// can go by prefix.
func PhotoKey(appID string, created time.Time, sha string) string {
	return created.In(events.ChinaTime).Format("2006/01/02") + "/" + appID + "-" + sha + ".jpg"
}

// PhotoUpload is one photo upload.
type PhotoUpload struct {
	ContentType string
	Body        []byte
	// KioskID is the kiosk the photo is taken at (X-Kiosk-Id); required when the
	// application came through the kiosk channel, and it must be registered.
	KioskID string
	Actor   Actor
}

// UploadPhoto validates and strips the photo (CheckPhoto), stores it, and moves the application to
// photo_pending_audit with a PhotoSubmitted event.
//
// Order: the application and kiosk are checked first (cheap refusals), then the object is
// written, then the database transaction commits. The object store being down is a 503
// before anything in the database changed. If the transaction fails after the upload, the
// object is deleted at once (best effort, unless another committed row already names the
// same content-addressed key); what that delete misses is an orphan object with no
// application_photos row, which SweepOrphanPhotos removes.
func (s *Service) UploadPhoto(ctx context.Context, id string, u PhotoUpload) (View, error) {
	a, err := s.peek(ctx, id)
	if err != nil {
		return View{}, err
	}
	if _, ok := Next(a.Status, ActPhoto); !ok {
		return View{}, illegal(ActPhoto, a.Status)
	}
	if a.Channel == string(events.ChannelKiosk) || u.KioskID != "" {
		if u.KioskID == "" {
			return View{}, problem.New(http.StatusForbidden, "kiosk-not-registered", "Kiosk not registered",
				"an application made at a kiosk takes its photo at a registered kiosk: send X-Kiosk-Id (004 §3(24))").
				With("rule", "004 §3(24)")
		}
		if err := s.requireRegisteredKiosk(ctx, u.KioskID); err != nil {
			return View{}, err
		}
	}
	// An application made at a counter takes its photo there: only that channel's caller
	// may upload it (the transport gives a counter channel to signed callers alone,
	// shared/channelauth), so nobody else can swap the photo of an outlet or bank applicant.
	if (a.Channel == string(events.ChannelOutlet) || a.Channel == string(events.ChannelBank)) && u.Actor.Channel != a.Channel {
		return View{}, problem.New(http.StatusForbidden, "photo-channel", "Photo must come from the counter",
			"this application was made on the "+a.Channel+" channel; its photo is uploaded there, by that channel's signed caller").
			With("rule", "photo-from-application-channel").With("applicationChannel", a.Channel)
	}
	if (u.Actor.ID != "" && !validOpaqueID(u.Actor.ID)) || (u.KioskID != "" && !validOpaqueID(u.KioskID)) {
		return View{}, problem.Invalid("the operator or kiosk id is not valid", problem.Field("operator", "must be an opaque id of 1–64 letters, digits or ._:@-"))
	}
	ph, err := checkUpload(u)
	if err != nil {
		return View{}, err
	}
	key := PhotoKey(a.ID, a.CreatedAt, ph.SHA256)
	if err := s.putPhoto(ctx, key, &ph); err != nil {
		return View{}, err
	}
	at := s.now()
	actor := u.Actor
	if actor.Channel == "" {
		actor.Channel = a.Channel
	}
	if actor.ID == "" {
		actor.ID = a.PersonID
		if u.KioskID != "" {
			actor.ID = u.KioskID
		}
	}
	kiosk := nullable(u.KioskID)
	attach := func(tx db.Sender, a *row) error {
		b := &pgx.Batch{}
		ev, err := queuePhotoRow(b, a.ID, &ph, key, kiosk, actor, at, false)
		if err != nil {
			return err
		}
		if err := s.queueTransition(b, a, change{action: ActPhoto, actor: actor, photo: PhotoBucket + "/" + key,
			events: []event.Event{ev}}, at); err != nil {
			return err
		}
		return db.SendGuarded(ctx, tx, b)
	}
	// Without a lock first, on the application as peeked (one implicit transaction,
	// guarded by its version); if it changed meanwhile, again under its lock.
	err = attach(s.Pool, &a)
	if db.FailedGuard(err) == guardVersion {
		err = s.locked(ctx, id, func(tx pgx.Tx, locked *row) error {
			a = *locked
			return attach(tx, &a)
		})
	}
	if err != nil {
		s.dropUnreferenced(key)
		return View{}, err
	}
	return s.load(ctx, a, false)
}

// checkUpload is CheckPhoto with its refusal as the problem to answer.
func checkUpload(u PhotoUpload) (Photo, error) {
	ph, err := CheckPhoto(u.ContentType, u.Body)
	var pe *PhotoError
	if errors.As(err, &pe) {
		p := problem.New(pe.Status, "photo-rejected", "Photo not accepted", pe.Reason).With("code", pe.Code)
		p.InvalidParams = []problem.InvalidParam{problem.Field("photo", pe.Reason)}
		return Photo{}, p
	}
	return ph, err
}

// putPhoto writes the photo object; the store failing is a 503.
func (s *Service) putPhoto(ctx context.Context, key string, ph *Photo) error {
	if err := s.Photos.Put(ctx, key, ph.JPEG, "image/jpeg", ph.SHA256); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.unavailable("object-store", err)
	}
	return nil
}

// peek reads an application without locking it.
func (s *Service) peek(ctx context.Context, id string) (row, error) {
	if !ValidApplicationID(id) {
		return row{}, ErrNotFound
	}
	return scanRow(s.Pool.QueryRow(ctx, `SELECT `+rowColumns+` FROM applications WHERE application_id = $1`, id))
}

// dropUnreferenced deletes an uploaded object whose transaction failed, unless a committed
// row names it. It runs on a context of its own: the request's may be what ended.
func (s *Service) dropUnreferenced(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var referenced bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM application_photos WHERE object_key = $1)`, key).
		Scan(&referenced); err != nil || referenced {
		return // unknown: leave it for the sweep
	}
	_ = s.Photos.Delete(ctx, key)
}
