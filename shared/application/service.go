package application

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
)

// Producer is the name under which card-apply's outbox rows are written.
const Producer = "card-apply"

// Source is the CloudEvents source of every event card-apply emits.
const Source = "/functions/card-apply"

// PhotoBucket holds application photos; keys are <yyyy>/<mm>/<dd>/<applicationId>-<sha256>.jpg (PhotoKey).
const PhotoBucket = "photos"

// ObjectStore keeps photo objects (MinIO in production through its S3 API).
type ObjectStore interface {
	// Put stores body under key; sha256Hex, when the caller has it already, spares the
	// store hashing body again (S3 signs the payload's SHA-256).
	Put(ctx context.Context, key string, body []byte, contentType, sha256Hex string) error
	Delete(ctx context.Context, key string) error
}

// Actor is who asks for a change: an opaque id (person, operator, kiosk, "system"), the
// channel and the request id. Never personal data: it goes into the audit log.
type Actor struct {
	ID        string
	Channel   string
	RequestID string
}

// Service carries out applications. Every field but Now and Unavailable is required.
type Service struct {
	Pool    *pgxpool.Pool
	People  *person.Store
	Sealer  person.Protector // seals the applicant's details (pii.Keyring)
	Audit   *audit.Log
	Photos  ObjectStore
	Reports ObjectStore // result workbooks of employer batches (optional)
	Factory Factory
	// Cards is the card register's configuration (province status codes, card.LoadConfig):
	// activation issues the new card and cancels a replaced one through shared/card.
	// Zero: the default codes.
	Cards card.Config
	// PhotoReuseWithin bounds the age of a photo a replacement may take over (0:
	// DefaultPhotoReuseWithin).
	PhotoReuseWithin time.Duration
	Now              func() time.Time
	// Unavailable turns a dependency failure into the 503 to send (platform.Deps.Unavailable).
	Unavailable func(dependency string, err error) *problem.Problem
}

// now is the clock at Postgres's precision, so that an answer built from what was written
// shows the times a later read returns.
func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().Truncate(time.Microsecond)
	}
	return time.Now().Truncate(time.Microsecond)
}

func (s *Service) unavailable(dep string, err error) *problem.Problem {
	if s.Unavailable != nil {
		return s.Unavailable(dep, err)
	}
	return problem.Unavailable(dep, 5*time.Second, err)
}

// ErrNotFound reports an unknown application.
var ErrNotFound = errors.New("no such application")

// View is an application as shown to callers: personal data masked.
type View struct {
	ApplicationID string         `json:"applicationId"`
	Status        Status         `json:"status"`
	StatusLabel   string         `json:"statusLabel"`
	StatusSince   time.Time      `json:"statusSince"`
	Channel       events.Channel `json:"channel"`
	IDKind        string         `json:"idKind"`
	IDNumber      string         `json:"idNumber"` // masked
	Name          string         `json:"name"`     // masked
	EnglishName   string         `json:"englishName,omitempty"`
	CardName      string         `json:"cardName"` // masked
	NameExtended  bool           `json:"nameExtended"`
	Nationality   string         `json:"nationality"`
	Ethnicity     string         `json:"ethnicity,omitempty"`
	Phone         string         `json:"phone"` // masked
	PhotoReason   string         `json:"photoRejectedReason,omitempty"`
	HasPhoto      bool           `json:"hasPhoto"`
	BatchNo       string         `json:"batchNo,omitempty"`
	// Kind is first, reissue (补卡) or renewal (换卡); a replacement names the card it
	// replaces (card numbers are not personal data; the id is opaque) and why.
	Kind           events.ApplicationKind `json:"kind"`
	KindLabel      string                 `json:"kindLabel"`
	ReplacesCardID string                 `json:"replacesCardId,omitempty"`
	ReplacesCardNo string                 `json:"replacesCardNo,omitempty"`
	ReplaceReason  string                 `json:"replaceReason,omitempty"`
	CardNo         string                 `json:"cardNo,omitempty"`
	WaybillNo      string                 `json:"waybillNo,omitempty"`
	Carrier        string                 `json:"carrier,omitempty"`
	SubmittedAt    time.Time              `json:"submittedAt"`
	History        []Step                 `json:"history,omitempty"`
}

// Step is one history row. Times are China time (UTC+8) on the wire.
type Step struct {
	Seq     int64     `json:"seq"`
	From    Status    `json:"from,omitempty"`
	To      Status    `json:"to"`
	Label   string    `json:"label"`
	Action  string    `json:"action"`
	Channel string    `json:"channel"`
	Reason  string    `json:"reason,omitempty"`
	Waybill string    `json:"waybillNo,omitempty"`
	At      time.Time `json:"at"`
}

// row is an application as stored.
type row struct {
	ID, PersonID, Channel, IDKind string
	KioskID                       *string
	DetailsEnc                    string
	Status                        Status
	StatusSince                   time.Time
	Version                       int64
	PhotoObject, PhotoReason      *string
	BatchNo, CardNo, WaybillNo    *string
	CreatedAt                     time.Time
	Kind                          events.ApplicationKind
	ReplacesCardID                *string // set exactly for a replacement (008_replacement.sql)
	ReplacesCardNo, ReplaceReason *string
}

const rowColumns = `application_id, person_id, channel, id_kind, kiosk_id, details_enc, status, status_since, version,
	photo_object, photo_reason, batch_no, card_no, waybill_no, created_at, kind, replaces_card_id, replaces_card_no,
	replace_reason`

func scanRow(r pgx.Row) (row, error) {
	var a row
	err := r.Scan(&a.ID, &a.PersonID, &a.Channel, &a.IDKind, &a.KioskID, &a.DetailsEnc, &a.Status, &a.StatusSince,
		&a.Version, &a.PhotoObject, &a.PhotoReason, &a.BatchNo, &a.CardNo, &a.WaybillNo, &a.CreatedAt, &a.Kind,
		&a.ReplacesCardID, &a.ReplacesCardNo, &a.ReplaceReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, ErrNotFound
	}
	return a, err
}

func detailsField(appID string) pii.Field {
	return pii.Field{Table: "applications", Column: "details_enc", Row: appID}
}

func newApplicationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "app_" + hex.EncodeToString(b[:])
}

// ValidApplicationID reports whether s has the shape of an application id.
func ValidApplicationID(s string) bool {
	if len(s) != 28 || !strings.HasPrefix(s, "app_") {
		return false
	}
	_, err := hex.DecodeString(s[4:])
	return err == nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Apply validates req and records the application in state submitted, with its history
// row, audit entry and ApplicationSubmitted event in one transaction.
//
// One person, one card: a person with an open application, or with a card in use, cannot
// apply (409). Applications for one person serialise on a transaction-scoped advisory
// lock, and the unique index applications_one_open refuses a second open application even
// if that lock were bypassed; so of concurrent applications exactly one is recorded.
func (s *Service) Apply(ctx context.Context, req Request, actor Actor) (View, error) {
	now := s.now()
	v, p := Validate(req, now)
	if p != nil {
		return View{}, p
	}
	return s.submitFirst(ctx, v, nil, actor, now)
}

// ApplyWithPhoto is Apply and UploadPhoto in one: the application is recorded with its
// photo, in state photo_pending_audit, its history showing both steps. A counter or kiosk
// takes the photo with the application, and the H5 form sends both; the photo is checked
// before anything is recorded, so a refused photo leaves no application behind.
func (s *Service) ApplyWithPhoto(ctx context.Context, req Request, photo PhotoUpload, actor Actor) (View, error) {
	now := s.now()
	v, p := Validate(req, now)
	if p != nil {
		return View{}, p
	}
	ph, err := checkUpload(photo)
	if err != nil {
		return View{}, err
	}
	return s.submitFirst(ctx, v, &ph, actor, now)
}

// checkCaller refuses a malformed operator id and an unregistered kiosk.
func (s *Service) checkCaller(ctx context.Context, v Validated, actor Actor) error {
	if actor.ID != "" && !validOpaqueID(actor.ID) {
		return problem.Invalid("the operator id is not valid", problem.Field("operator", "must be an opaque id of 1–64 letters, digits or ._:@-"))
	}
	if v.KioskID != "" {
		return s.requireRegisteredKiosk(ctx, v.KioskID)
	}
	return nil
}

// Guards of a first application's batch (db.Guard).
const (
	guardNoOpenApplication = "no-open-application"
	guardNoCardInUse       = "no-card-in-use"
)

// submitFirst records a validated first application (and its photo, when ph is set).
//
// The person is looked up, and everything else is one batch without BEGIN, so one
// implicit transaction: a new person's registration, the per-person lock, the one-person-
// one-card guards (read after the lock), the application, history, audit entries and
// events. The photo object is written before it, so the store being down is a 503 with
// nothing recorded; if the batch fails, the object is deleted again.
func (s *Service) submitFirst(ctx context.Context, v Validated, ph *Photo, actor Actor, now time.Time) (View, error) {
	if err := s.checkCaller(ctx, v, actor); err != nil {
		return View{}, err
	}
	appID := newApplicationID()
	sealed, err := s.sealDetails(ctx, appID, v.Details)
	if err != nil {
		return View{}, err
	}
	var key string
	if ph != nil {
		key = PhotoKey(appID, now, ph.SHA256)
		if err := s.putPhoto(ctx, key, ph); err != nil {
			return View{}, err
		}
	}
	a, err := s.recordFirst(ctx, v, ph, key, appID, sealed, actor, now)
	if err != nil {
		if ph != nil {
			s.dropUnreferenced(key)
		}
		return View{}, err
	}
	return s.view(a, v.ID.Number, v.Details, nil), nil
}

func (s *Service) recordFirst(ctx context.Context, v Validated, ph *Photo, key, appID, sealed string, actor Actor, now time.Time) (row, error) {
	// A first application is mostly a person's first contact with the register, so the
	// batch registers them as it goes; only if the ID number is known already (the
	// registration fails the batch) is the person looked up and the batch sent again.
	known := ""
	for attempt := 0; ; attempt++ {
		b := &pgx.Batch{}
		personID := known
		if personID == "" {
			np, err := s.People.Prepare(ctx, v.ID.Canonical(), v.Details.DisplayName(), v.Details.Phone)
			if err != nil {
				return row{}, err
			}
			personID = np.ID
			np.Queue(b)
		}
		// After the lock, so they see what the person's other applications committed.
		b.Queue(personLockSQL, personID)
		b.Queue(db.GuardAll(
			db.Cond{Name: guardNoOpenApplication, SQL: `NOT EXISTS (` + openApplicationSQL + `)`},
			db.Cond{Name: guardNoCardInUse, SQL: `NOT EXISTS (SELECT 1 FROM cards WHERE person_id = $1 AND status <> 'cancelled')`}),
			personID)
		act := actor
		if act.ID == "" {
			act.ID = personID
		}
		act.Channel = string(v.Channel)
		a := row{ID: appID, PersonID: personID, Channel: string(v.Channel), IDKind: v.ID.Kind.String(), KioskID: nullable(v.KioskID),
			DetailsEnc: sealed, Status: Submitted, StatusSince: now, CreatedAt: now, Kind: events.KindFirst}
		if err := s.queueSubmitted(b, &a, ph, key, act, nil, now); err != nil {
			return row{}, err
		}
		err := db.SendGuarded(ctx, s.Pool, b)
		if known == "" && person.AlreadyRegistered(err) && attempt < 2 {
			// Registered already, or just now by a concurrent application.
			if known, err = s.People.FindByIDNumber(ctx, v.ID.Canonical()); err != nil {
				return row{}, err
			}
			continue
		}
		switch db.FailedGuard(err) {
		case guardNoOpenApplication:
			return row{}, s.openApplicationOf(ctx, personID)
		case guardNoCardInUse:
			return row{}, cardInUse()
		}
		if db.UniqueViolation(err, "applications_one_open") {
			return row{}, openApplicationConflict("")
		}
		return a, err
	}
}

// personLockSQL serialises the applications of one person (first and replacement).
const personLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('sscard.application:' || $1, 0))`

// sealDetails encrypts the applicant's details, bound to the application.
func (s *Service) sealDetails(ctx context.Context, appID string, d Details) (string, error) {
	details, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return s.Sealer.Encrypt(ctx, detailsField(appID), string(details))
}

// queueSubmitted adds to b a submitted application a (its row, first history row, audit
// entry and ApplicationSubmitted event) and, with ph, its photo, moving a on to
// photo_pending_audit (a second history row and the PhotoSubmitted event; the one audit
// entry, of the one request, says so): a is inserted as it ends up, so the row is written
// once. detail adds to the audit entry.
func (s *Service) queueSubmitted(b *pgx.Batch, a *row, ph *Photo, key string, actor Actor, detail map[string]string, now time.Time) error {
	ev, err := events.New(events.ApplicationSubmitted, Source, a.ID, events.ApplicationSubmittedData{
		ApplicationID: a.ID, Channel: events.Channel(a.Channel), PersonRef: a.PersonID, SubmittedAt: now.UTC(),
		Kind: kindInEvent(a.Kind), ReplacesCardID: str(a.ReplacesCardID)})
	if err != nil {
		return err
	}
	submitted := *a
	if detail == nil {
		detail = map[string]string{}
	}
	detail["to"], detail["idKind"] = string(Submitted), a.IDKind
	object := PhotoBucket + "/" + key
	if ph != nil {
		to, ok := Next(Submitted, ActPhoto)
		if !ok {
			return illegal(ActPhoto, Submitted)
		}
		a.Status, a.Version, a.PhotoObject = to, 1, &object
		detail["to"], detail["photo"] = string(to), object
	}
	b.Queue(`INSERT INTO applications (application_id, person_id, channel, id_kind, kiosk_id, details_enc,
		status, status_since, created_at, updated_at, kind, replaces_card_id, replaces_card_no, replace_reason, version,
		photo_object)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $9, $10, $11, $12, $13, $14)`,
		a.ID, a.PersonID, a.Channel, a.IDKind, a.KioskID, a.DetailsEnc, a.Status, now,
		a.Kind, a.ReplacesCardID, a.ReplacesCardNo, a.ReplaceReason, a.Version, a.PhotoObject)
	submit := change{action: ActSubmit, actor: actor, events: []event.Event{ev}}
	if err := s.queueHistory(b, &submitted, Submitted, submit, now); err != nil {
		return err
	}
	if err := s.queueAudit(b, &submitted, submit, "application.submit", detail); err != nil {
		return err
	}
	if ph == nil {
		return nil
	}
	submitted.Version = 1
	pev, err := queuePhotoRow(b, a.ID, ph, key, a.KioskID, actor, now, true)
	if err != nil {
		return err
	}
	return s.queueHistory(b, &submitted, a.Status, change{action: ActPhoto, actor: actor, photo: object, events: []event.Event{pev}}, now)
}

// queuePhotoRow adds to b the row of a photo stored under key for application appID,
// and returns the PhotoSubmitted event that announces it (which starts the photo-audit
// clock and face enrollment). A re-upload of the same content names the same object;
// first says the application is new in b, so there is no earlier upload to meet (and the
// insert needs no conflict arbiter, which costs Postgres a speculative insertion).
func queuePhotoRow(b *pgx.Batch, appID string, ph *Photo, key string, kiosk *string, actor Actor, at time.Time, first bool) (event.Event, error) {
	insert := photoUpsertSQL
	if first {
		insert = photoInsertSQL
	}
	b.Queue(insert, appID, key, ph.SHA256, len(ph.JPEG), ph.Width, ph.Height, kiosk, at)
	return events.New(events.PhotoSubmitted, Source, appID, events.PhotoSubmittedData{ApplicationID: appID,
		PhotoObject: PhotoBucket + "/" + key, Channel: events.Channel(actor.Channel), KioskID: str(kiosk), SubmittedAt: at.UTC()})
}

const (
	photoInsertSQL = `INSERT INTO application_photos (application_id, object_key, sha256, bytes, width, height,
		kiosk_id, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	photoUpsertSQL = photoInsertSQL + ` ON CONFLICT (application_id, object_key)
		DO UPDATE SET uploaded_at = excluded.uploaded_at, kiosk_id = excluded.kiosk_id`
)

// submitReplacement records a validated replacement of the person's card (replace.go):
// the same per-person lock and one-open-application rule as a first application, then
// the card the rules let it replace, held while the replacement is recorded.
func (s *Service) submitReplacement(ctx context.Context, v Validated, r *replacement, actor Actor, now time.Time) (View, error) {
	if err := s.checkCaller(ctx, v, actor); err != nil {
		return View{}, err
	}
	// A replacement is for someone the register knows: no card, no person.
	personID, err := s.People.FindByIDNumber(ctx, v.ID.Canonical())
	if err == nil && personID == "" {
		return View{}, noCardToReplace()
	}
	if err != nil {
		return View{}, err
	}
	appID := newApplicationID()
	sealed, err := s.sealDetails(ctx, appID, v.Details)
	if err != nil {
		return View{}, err
	}
	if actor.ID == "" {
		actor.ID = personID
	}
	actor.Channel = string(v.Channel)
	a := row{ID: appID, PersonID: personID, Channel: string(v.Channel), IDKind: v.ID.Kind.String(), KioskID: nullable(v.KioskID),
		DetailsEnc: sealed, Status: Submitted, StatusSince: now, CreatedAt: now, Kind: r.kind}
	// The person's lock and the open-application check go with BEGIN (db.BeginWith).
	first := &pgx.Batch{}
	first.Queue(personLockSQL, personID)
	first.Queue(openApplicationSQL, personID)
	err = db.BeginWith(ctx, s.Pool, first, func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		return noOpenApplication(br.QueryRow())
	}, func(tx pgx.Tx) error {
		old, err := s.replaceable(ctx, tx, personID, r, now)
		if err != nil {
			return err
		}
		a.ReplacesCardID, a.ReplacesCardNo, a.ReplaceReason = &old.id, &old.no, &r.reason
		var photo *priorPhoto
		if r.reusePhoto {
			if photo, err = s.photoOnRecord(ctx, tx, old.no, now); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		if err := s.queueSubmitted(b, &a, nil, "", actor, map[string]string{"kind": string(a.Kind),
			"replacesCard": old.id, "reason": r.reason}, now); err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			switch {
			case db.UniqueViolation(err, "applications_one_open"):
				return openApplicationConflict("")
			case db.UniqueViolation(err, "applications_replaces_once"):
				return alreadyReplaced()
			}
			return err
		}
		if photo != nil {
			return s.reusePhoto(ctx, tx, &a, photo, actor, now)
		}
		return nil
	})
	if err != nil {
		return View{}, err
	}
	return s.view(a, v.ID.Number, v.Details, nil), nil
}

// openApplicationOf is the 409 naming the state of the person's open application.
func (s *Service) openApplicationOf(ctx context.Context, personID string) error {
	if err := noOpenApplication(s.Pool.QueryRow(ctx, openApplicationSQL, personID)); err != nil {
		return err
	}
	return openApplicationConflict("") // withdrawn or activated since: still a conflict of the moment
}

func openApplicationConflict(state Status) *problem.Problem {
	p := problem.Conflict("this person already has an open card application; one person may hold one card (一人一卡)").
		With("rule", "one-person-one-card")
	if state != "" {
		p = p.With("currentState", string(state))
	}
	return p
}

// openApplicationSQL finds a person's open application: first or replacement, one at a
// time.
const openApplicationSQL = `SELECT status FROM applications WHERE person_id = $1 AND status NOT IN ('activated', 'withdrawn')
	LIMIT 1`

// noOpenApplication refuses when the openApplicationSQL row names one.
func noOpenApplication(r pgx.Row) error {
	var open *string
	err := r.Scan(&open)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if open != nil {
		return openApplicationConflict(Status(*open))
	}
	return nil
}

// cardInUse refuses a first application from a person with a card in use (the card
// register, migration 004; a cancelled card is not in use).
func cardInUse() *problem.Problem {
	return problem.Conflict("this person holds a social security card in use; apply for a replacement (补换) instead").
		With("rule", "one-person-one-card").With("currentState", "card_in_use")
}

// ErrKioskNotRegistered: the kiosk is unknown or not registered (004 §3(24)).
func kioskForbidden() *problem.Problem {
	return problem.New(http.StatusForbidden, "kiosk-not-registered", "Kiosk not registered",
		"only a registered kiosk may take applications and photos (004 §3(24))").With("rule", "004 §3(24)")
}

func (s *Service) requireRegisteredKiosk(ctx context.Context, kioskID string) error {
	var ok bool
	err := s.Pool.QueryRow(ctx, `SELECT registered FROM kiosks WHERE kiosk_id = $1`, kioskID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !ok {
		return kioskForbidden()
	}
	return err
}

// locked runs fn on application id, locked in the round trip that begins its transaction
// (db.BeginWith); fn's error rolls it back.
func (s *Service) locked(ctx context.Context, id string, fn func(tx pgx.Tx, a *row) error) error {
	if !ValidApplicationID(id) {
		return ErrNotFound
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+rowColumns+` FROM applications WHERE application_id = $1 FOR UPDATE`, id)
	var a row
	return db.BeginWith(ctx, s.Pool, b, func(br pgx.BatchResults) error {
		var err error
		a, err = scanRow(br.QueryRow())
		return err
	}, func(tx pgx.Tx) error { return fn(tx, &a) })
}

// change is one transition to record.
type change struct {
	action  Action
	actor   Actor
	reason  string
	photo   string // new photo object
	batch   string
	cardNo  string
	waybill string
	events  []event.Event
}

// illegal is the 409 of a transition that the current state does not allow.
func illegal(a Action, cur Status) *problem.Problem {
	allowed := make([]string, 0, 4)
	for _, s := range AllowedFrom(a) {
		allowed = append(allowed, string(s))
	}
	return problem.Conflict(fmt.Sprintf("%s is not allowed in state %s", a, cur)).
		With("currentState", string(cur)).With("allowedFrom", allowed)
}

// transition moves application a, as read, by c: state, history row, audit entry and
// events, in one round trip through tx (a transaction holding a's lock, or the pool:
// then one implicit transaction), guarded by a's version.
func (s *Service) transition(ctx context.Context, tx db.Sender, a *row, c change, at time.Time) error {
	b := &pgx.Batch{}
	if err := s.queueTransition(b, a, c, at); err != nil {
		return err
	}
	return db.SendGuarded(ctx, tx, b)
}

// guardVersion: the application is still at the version its writer read.
const guardVersion = "application-version"

// queueTransition adds transition c of a to b and moves a on.
func (s *Service) queueTransition(b *pgx.Batch, a *row, c change, at time.Time) error {
	to, ok := Next(a.Status, c.action)
	if !ok {
		return illegal(c.action, a.Status)
	}
	// The version read is guarded, so the next one is known and the whole transition goes
	// to the database in one round trip.
	version := a.Version + 1
	b.Queue(db.GuardOne(guardVersion, `UPDATE applications SET status = $2, status_since = $3, updated_at = $3, version = $9,
			photo_object = coalesce($4, photo_object),
			photo_reason = CASE WHEN $2 = 'photo_rejected' THEN $5 WHEN $2 IN ('photo_pending_audit', 'photo_approved') THEN NULL ELSE photo_reason END,
			batch_no = coalesce($6, batch_no), card_no = coalesce($7, card_no), waybill_no = coalesce($8, waybill_no)
		WHERE application_id = $1 AND version = $9 - 1`),
		a.ID, to, at, nullable(c.photo), nullable(c.reason), nullable(c.batch), nullable(c.cardNo), nullable(c.waybill), version)
	a.Version = version
	if err := s.queueRecord(b, a, to, c, "", nil, at); err != nil {
		return err
	}
	// a as the UPDATE leaves it (the caller may answer from it without reading it again).
	a.Status, a.StatusSince = to, at
	switch to {
	case PhotoRejected:
		a.PhotoReason = nullable(c.reason)
	case PhotoPendingAudit, PhotoApproved:
		a.PhotoReason = nil
	}
	for _, f := range []struct {
		dst **string
		v   string
	}{{&a.PhotoObject, c.photo}, {&a.BatchNo, c.batch}, {&a.CardNo, c.cardNo}, {&a.WaybillNo, c.waybill}} {
		if f.v != "" {
			v := f.v
			*f.dst = &v
		}
	}
	return nil
}

// queueRecord adds to b what records step c of a to status to: the history row and
// events (queueHistory) and the audit entry (queueAudit: action "application.<action>"
// unless auditAction is given; detail, or else from and to).
func (s *Service) queueRecord(b *pgx.Batch, a *row, to Status, c change, auditAction string, detail map[string]string, at time.Time) error {
	if detail == nil {
		detail = map[string]string{"from": string(a.Status), "to": string(to)}
	}
	if err := s.queueHistory(b, a, to, c, at); err != nil {
		return err
	}
	return s.queueAudit(b, a, c, auditAction, detail)
}

// queueHistory adds step c of a to status to: its history row (sequence a.Version, from
// a.Status; none for the first step) and c's events.
func (s *Service) queueHistory(b *pgx.Batch, a *row, to Status, c change, at time.Time) error {
	var eventID *string
	if len(c.events) > 0 {
		id := c.events[0].ID()
		eventID = &id
	}
	var from *Status
	if c.action != ActSubmit {
		from = &a.Status
	}
	b.Queue(`INSERT INTO application_history (application_id, seq, from_status, to_status, action, channel,
		actor, reason, waybill_no, at, request_id, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		a.ID, a.Version, from, to, c.action, c.actor.Channel, c.actor.ID, c.reason, nullable(c.waybill), at,
		nullable(c.actor.RequestID), eventID)
	for _, ev := range c.events {
		if err := outbox.Queue(b, Producer, "", ev); err != nil {
			return err
		}
	}
	return nil
}

// queueAudit adds the audit entry of step c of a.
func (s *Service) queueAudit(b *pgx.Batch, a *row, c change, action string, detail map[string]string) error {
	if action == "" {
		action = "application." + string(c.action)
	}
	return s.Audit.Queue(b, audit.Entry{Actor: c.actor.ID, Channel: c.actor.Channel, Action: action,
		ObjectType: "application", ObjectID: a.ID, RequestID: c.actor.RequestID, Detail: detail})
}

// notice is the SMSRequested event telling the applicant about a milestone (制卡进度):
// sms-alert resolves the phone number from the person reference. Params carry no PII.
func notice(a *row, to Status, params map[string]string) (event.Event, error) {
	if params == nil {
		params = map[string]string{}
	}
	params["status"] = string(to)
	params["applicationId"] = a.ID
	return events.New(events.SMSRequested, Source, a.ID, events.SMSRequestedData{
		MessageID: a.ID + ":" + string(to), Template: "card.application." + string(to), Params: params,
		RecipientRef: a.PersonID, Purpose: events.PurposeNotice})
}

// AuditPhoto records an operator's photo audit: approved or rejected with the reason the
// applicant is shown (PhotoAudited event).
func (s *Service) AuditPhoto(ctx context.Context, id string, result events.AuditResult, reason string, operator Actor) (View, error) {
	reason = strings.TrimSpace(reason)
	var bad []problem.InvalidParam
	if !result.Valid() {
		bad = append(bad, problem.Field("result", "must be approved or rejected"))
	}
	if result == events.AuditRejected && reason == "" {
		bad = append(bad, problem.Field("reason", "is required when the photo is rejected: the applicant is shown it"))
	}
	if len([]rune(reason)) > 200 {
		bad = append(bad, problem.Field("reason", "must be at most 200 characters"))
	}
	if !validOpaqueID(operator.ID) {
		bad = append(bad, problem.Field("operator", "an opaque operator id (1–64 letters, digits or ._:@-) is required"))
	}
	if len(bad) > 0 {
		return View{}, problem.Invalid("the photo audit has invalid fields", bad...)
	}
	if operator.Channel == "" {
		operator.Channel = "outlet"
	}
	act := ActApprove
	if result == events.AuditRejected {
		act = ActReject
	}
	at := s.now()
	err := s.locked(ctx, id, func(tx pgx.Tx, a *row) error {
		ev, err := events.New(events.PhotoAudited, Source, a.ID, events.PhotoAuditedData{ApplicationID: a.ID, Result: result,
			Reason: reason, Auditor: operator.ID, AuditedAt: at.UTC()})
		if err != nil {
			return err
		}
		return s.transition(ctx, tx, a, change{action: act, actor: operator, reason: reason, events: []event.Event{ev}}, at)
	})
	if err != nil {
		return View{}, err
	}
	return s.Get(ctx, id, false)
}

// Withdraw ends an application before production (撤销申请), at the applicant's request
// online or at a counter. A withdrawn replacement frees the card it was to replace: it
// may be unlocked again (loss-report refuses that while a replacement is underway).
func (s *Service) Withdraw(ctx context.Context, id string, actor Actor) (View, error) {
	return s.holderAction(ctx, id, actor, func(tx pgx.Tx, a *row, actor Actor, at time.Time) error {
		return s.transition(ctx, tx, a, change{action: ActWithdrawal, actor: actor}, at)
	})
}

// holderAction runs act on the locked application id on behalf of its holder: online
// (h5) unless a counter's channel is named, the holder as actor unless an operator is.
func (s *Service) holderAction(ctx context.Context, id string, actor Actor, act func(pgx.Tx, *row, Actor, time.Time) error) (View, error) {
	if actor.Channel == "" {
		actor.Channel = "h5"
	}
	if actor.ID != "" && !validOpaqueID(actor.ID) {
		return View{}, problem.Invalid("the operator id is not valid", problem.Field("operator", "must be an opaque id of 1–64 letters, digits or ._:@-"))
	}
	at := s.now()
	err := s.locked(ctx, id, func(tx pgx.Tx, a *row) error {
		if actor.ID == "" {
			actor.ID = a.PersonID
		}
		return act(tx, a, actor, at)
	})
	if err != nil {
		return View{}, err
	}
	return s.Get(ctx, id, false)
}

// Activate records that the holder activated (启用) the delivered card. The card is issued
// into the card register (004) in status normal in the same transaction, so loss-report
// can act on it from then on; activating a replacement also cancels the card it replaces
// (replace.go), so the person never holds two usable cards.
func (s *Service) Activate(ctx context.Context, id string, actor Actor) (View, error) {
	return s.holderAction(ctx, id, actor, func(tx pgx.Tx, a *row, actor Actor, at time.Time) error {
		if _, ok := Next(a.Status, ActActivate); !ok {
			return illegal(ActActivate, a.Status)
		}
		// Locks are taken application row, then card row; loss-report locks a card and only
		// reads applications, so the two cannot deadlock.
		if err := s.cancelReplaced(ctx, tx, a, actor, at); err != nil {
			return err
		}
		ev, err := notice(a, Activated, map[string]string{"cardNo": str(a.CardNo)})
		if err != nil {
			return err
		}
		if err := s.transition(ctx, tx, a, change{action: ActActivate, actor: actor, events: []event.Event{ev}}, at); err != nil {
			return err
		}
		return s.issueCard(ctx, tx, a, actor, at)
	})
}

// issueCard records the activated card in the card register (shared/card, migration
// 004) in the activation's transaction: status normal, issue history, audit entry.
func (s *Service) issueCard(ctx context.Context, tx pgx.Tx, a *row, actor Actor, at time.Time) error {
	if a.CardNo == nil {
		return errors.New("activated application has no card number")
	}
	_, err := s.cardRegister(at).CreateTx(ctx, tx, card.NewCard{CardNo: *a.CardNo, PersonID: a.PersonID, Actor: actor.ID,
		Channel: actor.Channel, RequestID: actor.RequestID})
	if err != nil {
		return fmt.Errorf("issue card: %w", err)
	}
	return nil
}

func validOpaqueID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:@-", c) >= 0) {
			return false
		}
	}
	return true
}

// Get returns the application, masked, with its history when withHistory.
func (s *Service) Get(ctx context.Context, id string, withHistory bool) (View, error) {
	if !ValidApplicationID(id) {
		return View{}, ErrNotFound
	}
	a, err := scanRow(s.Pool.QueryRow(ctx, `SELECT `+rowColumns+` FROM applications WHERE application_id = $1`, id))
	if err != nil {
		return View{}, err
	}
	return s.load(ctx, a, withHistory)
}

func (s *Service) load(ctx context.Context, a row, withHistory bool) (View, error) {
	plain, err := s.Sealer.Decrypt(ctx, detailsField(a.ID), a.DetailsEnc)
	if err != nil {
		return View{}, fmt.Errorf("application %s details: %w", a.ID, err)
	}
	var d Details
	if err := json.Unmarshal([]byte(plain), &d); err != nil {
		return View{}, fmt.Errorf("application %s details: %w", a.ID, err)
	}
	p, err := s.People.Get(ctx, a.PersonID)
	if err != nil {
		return View{}, err
	}
	var hist []Step
	if withHistory {
		if hist, err = s.history(ctx, a.ID); err != nil {
			return View{}, err
		}
	}
	return s.view(a, p.IDNumber, d, hist), nil
}

func (s *Service) view(a row, idNumber string, d Details, hist []Step) View {
	v := View{ApplicationID: a.ID, Status: a.Status, StatusLabel: a.Status.Label(), StatusSince: a.StatusSince.In(events.ChinaTime),
		Channel: events.Channel(a.Channel), IDKind: a.IDKind, IDNumber: mask.IDNumber(idNumber), Name: mask.Name(d.DisplayName()),
		CardName: mask.Name(d.CardName + d.CardNameExt), NameExtended: d.CardNameExt != "", Nationality: d.Nationality,
		Ethnicity: d.Ethnicity, Phone: mask.Phone(d.Phone), PhotoReason: str(a.PhotoReason), HasPhoto: a.PhotoObject != nil,
		BatchNo: str(a.BatchNo), CardNo: str(a.CardNo), WaybillNo: str(a.WaybillNo), SubmittedAt: a.CreatedAt.In(events.ChinaTime),
		History: hist, Kind: a.Kind, KindLabel: KindLabel(a.Kind), ReplacesCardID: str(a.ReplacesCardID),
		ReplacesCardNo: str(a.ReplacesCardNo), ReplaceReason: str(a.ReplaceReason)}
	if d.EnglishName != "" && d.Name != "" {
		v.EnglishName = mask.Name(d.EnglishName)
	}
	if v.WaybillNo != "" {
		v.Carrier = "EMS"
	}
	return v
}

func (s *Service) history(ctx context.Context, id string) ([]Step, error) {
	rows, err := s.Pool.Query(ctx, `SELECT seq, coalesce(from_status, ''), to_status, action, channel, reason,
		coalesce(waybill_no, ''), at FROM application_history WHERE application_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Step, error) {
		var st Step
		err := r.Scan(&st.Seq, &st.From, &st.To, &st.Action, &st.Channel, &st.Reason, &st.Waybill, &st.At)
		st.Label = st.To.Label()
		st.At = st.At.In(events.ChinaTime)
		return st, err
	})
}

// Progress is the progress query (制卡进度查询, 001 3.1.3, 004 §3(12)) by ID number: the
// person's applications, newest first, masked, with history and logistics. The number is
// looked up through the blind index only. An unknown number gives ErrNotFound (the same
// answer as a person without applications).
func (s *Service) Progress(ctx context.Context, idNumber string) ([]View, error) {
	id, err := pii.NormaliseIDNumber(idNumber)
	if err != nil {
		return nil, problem.Invalid("the ID number is not valid", problem.Field(FieldIDNumber, "is not an ID number"))
	}
	personID, err := s.People.FindByIDNumber(ctx, id)
	if err != nil {
		return nil, err
	}
	if personID == "" && len(id) == 15 {
		// A first-generation number: persons are keyed by the 18-digit form.
		if up, err := identity.Upgrade15To18(id); err == nil {
			personID, err = s.People.FindByIDNumber(ctx, up)
			if err != nil {
				return nil, err
			}
		}
	}
	if personID == "" {
		return nil, ErrNotFound
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+rowColumns+` FROM applications WHERE person_id = $1 ORDER BY created_at DESC LIMIT 10`, personID)
	if err != nil {
		return nil, err
	}
	apps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) { return scanRow(r) })
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, ErrNotFound
	}
	out := make([]View, 0, len(apps))
	for _, a := range apps {
		v, err := s.load(ctx, a, true)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
