package application

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/problem"
)

// Replacement (补换卡, 002 二(二)1(4), 004 §1(6), 001 3.1.2). A person who holds a card
// applies for a new one to take its place:
//
//   - 补卡 (reissue): the card is lost. Formal loss (正式挂失) is the precondition
//     (../shared/ref/domain.md §3.5): it is written, identity-checked and does not lapse,
//     whereas a temporary loss (临时挂失) lapses by itself after a few days, so a card under
//     temporary loss must be made formal first (loss-report, identity verified). A card
//     cancelled after a loss (挂失后注销) may be reissued too. A normal card is refused:
//     report it lost first, or, when it is in hand, renew it.
//   - 换卡 (renewal): the card is in hand and normal but damaged or expired. A card under
//     loss is reissued, not renewed; a cancelled card is replaced by a first application.
//
// Refusals are 409 with the card's currentState and the states the kind is allowed from.
// The replacement goes through the same production path as a first application (photo,
// audit, production, mail, delivery); the applicant may take over the approved photo of
// the card being replaced while it is recent enough (PhotoReuseWithin), or upload a new
// one. Activating the new card cancels (注销) the old one in the same transaction through
// the card register, reason "replaced", so one person never holds two usable cards.
// Concurrent replacements for one person yield one (the per-person lock and the one-open-
// application index); a card is replaced once (applications_replaces_once).

// Reasons a replacement may give, per kind (codes, never free text: they go into events
// and the audit log).
var replaceReasons = map[events.ApplicationKind][]string{
	events.KindReissue: {"lost", "stolen"},
	events.KindRenewal: {"damaged", "expired"},
}

// Field names of a replacement request beyond those of an application.
const (
	FieldKind       = "kind"
	FieldReason     = "reason"
	FieldCardNo     = "cardNo"
	FieldReusePhoto = "reusePhoto"
)

// DefaultPhotoReuseWithin: a photo on record older than this is not taken over. Our choice
// (no tender names one): an ID photo older than about two years no longer shows the holder
// reliably enough for the counter's face check and face matching.
const DefaultPhotoReuseWithin = 2 * 365 * 24 * time.Hour

// ReplacementRequest is a replacement as a channel sends it: the applicant's details (as
// in a first application: the new card is personalised and mailed from them) plus what the
// replacement is for.
type ReplacementRequest struct {
	Request
	Kind   events.ApplicationKind `json:"kind"`   // reissue (补卡) | renewal (换卡)
	Reason string                 `json:"reason"` // reissue: lost (default) | stolen; renewal: damaged | expired
	// CardNo, when given, must be the card the register holds for the person: the caller
	// confirms which card it means to replace.
	CardNo string `json:"cardNo,omitempty"`
	// ReusePhoto takes over the approved photo of the card being replaced.
	ReusePhoto bool `json:"reusePhoto,omitempty"`
}

// replacement is a validated ReplacementRequest.
type replacement struct {
	kind       events.ApplicationKind
	reason     string
	cardNo     string // "" when the caller named none
	reusePhoto bool
}

// ValidateReplacement applies the rules of an application to the applicant's details and
// checks the replacement's own fields, naming every field at fault.
func ValidateReplacement(req ReplacementRequest, now time.Time) (Validated, replacement, *problem.Problem) {
	v, p := Validate(req.Request, now)
	if p != nil && p.Status != http.StatusBadRequest {
		return Validated{}, replacement{}, p
	}
	var bad []problem.InvalidParam
	if p != nil {
		bad = p.InvalidParams
	}
	r := replacement{kind: events.ApplicationKind(strings.TrimSpace(string(req.Kind))), reason: strings.TrimSpace(req.Reason),
		cardNo: strings.ToUpper(strings.TrimSpace(req.CardNo)), reusePhoto: req.ReusePhoto}
	reasons, ok := replaceReasons[r.kind]
	switch {
	case r.kind == "":
		bad = append(bad, problem.Field(FieldKind, "is required: reissue (补卡, the card is lost) or renewal (换卡, damaged or expired)"))
	case r.kind == events.KindFirst:
		bad = append(bad, problem.Field(FieldKind, "a first application is made at /applications; here: reissue or renewal"))
	case !ok:
		bad = append(bad, problem.Field(FieldKind, "must be reissue or renewal"))
	case r.reason == "" && r.kind == events.KindReissue:
		r.reason = "lost"
	case r.reason == "":
		bad = append(bad, problem.Field(FieldReason, "is required for a renewal: "+strings.Join(reasons, " or ")))
	case !slices.Contains(reasons, r.reason):
		bad = append(bad, problem.Field(FieldReason, fmt.Sprintf("a %s gives %s", r.kind, strings.Join(reasons, " or "))))
	}
	if r.cardNo != "" && !card.ValidCardNo(r.cardNo) {
		bad = append(bad, problem.Field(FieldCardNo, "must be a card number: a letter and 8 digits"))
	}
	if len(bad) > 0 {
		return Validated{}, replacement{}, problem.Invalid("the replacement application has invalid fields", bad...)
	}
	return v, r, nil
}

// ApplyReplacement validates req and records a replacement of the person's card in state
// submitted (photo_approved when the photo on record is taken over), with history, audit
// entry and ApplicationSubmitted event (kind, replaced card) in one transaction.
func (s *Service) ApplyReplacement(ctx context.Context, req ReplacementRequest, actor Actor) (View, error) {
	now := s.now()
	v, r, p := ValidateReplacement(req, now)
	if p != nil {
		return View{}, p
	}
	return s.submitReplacement(ctx, v, &r, actor, now)
}

// CardState is what the replacement rules look at: the status of the person's card and,
// for a cancelled card, whether it was cancelled while lost (挂失后注销).
type CardState struct {
	Status              card.Status
	CancelledAfterLoss  bool
	TemporaryLossLapsed bool // a temporary loss whose time ran out: the card is normal again
}

// pseudo-state named in allowedFrom: a card cancelled while it was under loss.
const cancelledAfterLoss = "cancelled_after_loss"

// CheckReplacement decides whether a card in state c may be replaced by kind, and returns
// the 409 to send when not.
func CheckReplacement(kind events.ApplicationKind, c CardState) *problem.Problem {
	st := c.Status
	if st == card.TemporaryLoss && c.TemporaryLossLapsed {
		st = card.Normal
	}
	switch kind {
	case events.KindReissue:
		switch {
		case st == card.FormalLoss, st == card.Cancelled && c.CancelledAfterLoss:
			return nil
		case st == card.TemporaryLoss:
			return replaceConflict(kind, st, "a temporary loss (临时挂失) lapses by itself; confirm it as a formal loss (正式挂失, identity verified) before a reissue (补卡)")
		case st == card.Normal:
			return replaceConflict(kind, st, "the card is in use; report it lost (正式挂失) before a reissue (补卡), or renew (换卡) a damaged or expired card in hand")
		default:
			return replaceConflict(kind, st, "the card was cancelled without a loss; apply for a new card (首次申领)")
		}
	case events.KindRenewal:
		switch st {
		case card.Normal:
			return nil
		case card.TemporaryLoss, card.FormalLoss:
			return replaceConflict(kind, st, "the card is reported lost; a lost card is reissued (补卡), not renewed")
		default:
			return replaceConflict(kind, st, "the card is cancelled; apply for a new card (首次申领)")
		}
	}
	return replaceConflict(kind, st, "unknown replacement kind")
}

// ReplaceableFrom lists the card states kind may replace (for the 409's allowedFrom).
func ReplaceableFrom(kind events.ApplicationKind) []string {
	switch kind {
	case events.KindReissue:
		return []string{string(card.FormalLoss), cancelledAfterLoss}
	case events.KindRenewal:
		return []string{string(card.Normal)}
	}
	return []string{}
}

func replaceConflict(kind events.ApplicationKind, st card.Status, detail string) *problem.Problem {
	return problem.Conflict(fmt.Sprintf("%s is not possible while the card is %s: %s", kind, st, detail)).
		With("rule", "replacement").With("currentState", string(st)).With("allowedFrom", ReplaceableFrom(kind))
}

func noCardToReplace() *problem.Problem {
	return problem.Conflict("this person holds no card to replace; apply for a first card (首次申领) at /applications").
		With("rule", "replacement").With("currentState", "no_card")
}

func alreadyReplaced() *problem.Problem {
	return problem.Conflict("this card has been replaced already").
		With("rule", "replacement").With("currentState", "replaced")
}

// KindLabel is the Chinese name of an application kind shown to the applicant.
func KindLabel(k events.ApplicationKind) string {
	switch k {
	case events.KindReissue:
		return "补卡"
	case events.KindRenewal:
		return "换卡"
	}
	return "首次申领"
}

// kindInEvent leaves a first application's kind out of ApplicationSubmitted, as before
// replacements existed.
func kindInEvent(k events.ApplicationKind) events.ApplicationKind {
	if k == events.KindFirst {
		return ""
	}
	return k
}

// oldCard is the card a replacement supersedes.
type oldCard struct {
	id, no string
}

// replaceable finds the person's newest card, holds it (FOR SHARE: loss-report waits for
// our commit, so the status we judged is the status we record against) and applies the
// rules.
func (s *Service) replaceable(ctx context.Context, tx pgx.Tx, personID string, r *replacement, now time.Time) (oldCard, error) {
	var c oldCard
	var st CardState
	var expires *time.Time
	err := tx.QueryRow(ctx, `SELECT card_id, card_no, status, temp_loss_expires_at FROM cards WHERE person_id = $1
		ORDER BY created_at DESC, card_id DESC LIMIT 1 FOR SHARE`, personID).Scan(&c.id, &c.no, &st.Status, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return oldCard{}, noCardToReplace()
	}
	if err != nil {
		return oldCard{}, err
	}
	if r.cardNo != "" && r.cardNo != c.no {
		p := problem.New(http.StatusUnprocessableEntity, "card-mismatch", "Not this person's card",
			"the card named is not the card on record for this person")
		p.InvalidParams = []problem.InvalidParam{problem.Field(FieldCardNo, "is not this person's current card")}
		return oldCard{}, p
	}
	st.TemporaryLossLapsed = card.Lapsed(st.Status, expires, now)
	if st.Status == card.Cancelled {
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM card_status_history WHERE card_id = $1
			AND to_status = 'cancelled' AND from_status IN ('temporary_loss', 'formal_loss'))`, c.id).
			Scan(&st.CancelledAfterLoss); err != nil {
			return oldCard{}, err
		}
	}
	if p := CheckReplacement(r.kind, st); p != nil {
		return oldCard{}, p
	}
	return c, nil
}

// priorPhoto is the approved photo of the application that produced a card.
type priorPhoto struct {
	key, sha             string
	bytes, width, height int
	uploadedAt           time.Time
	kioskID              *string
}

// photoOnRecord finds the approved photo of the card cardNo (the photo of the activated
// application that produced it) if it is recent enough to take over.
func (s *Service) photoOnRecord(ctx context.Context, tx pgx.Tx, cardNo string, now time.Time) (*priorPhoto, error) {
	var p priorPhoto
	err := tx.QueryRow(ctx, `SELECT ph.object_key, ph.sha256, ph.bytes, ph.width, ph.height, ph.uploaded_at, ph.kiosk_id
		FROM applications a JOIN application_photos ph ON ph.application_id = a.application_id
			AND a.photo_object = $2 || '/' || ph.object_key
		WHERE a.card_no = $1 AND a.status = 'activated'`, cardNo, PhotoBucket).
		Scan(&p.key, &p.sha, &p.bytes, &p.width, &p.height, &p.uploadedAt, &p.kioskID)
	within := s.PhotoReuseWithin
	if within <= 0 {
		within = DefaultPhotoReuseWithin
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, photoNotReusable("no approved photo is on record for this card; upload a new photo")
	case err != nil:
		return nil, err
	case p.uploadedAt.Before(now.Add(-within)):
		return nil, photoNotReusable(fmt.Sprintf("the photo on record is older than %d days; upload a new photo", int(within.Hours()/24)))
	}
	return &p, nil
}

func photoNotReusable(reason string) *problem.Problem {
	p := problem.New(http.StatusUnprocessableEntity, "photo-not-reusable", "Photo on record not reusable", reason)
	p.InvalidParams = []problem.InvalidParam{problem.Field(FieldReusePhoto, reason)}
	return p
}

// reusePhoto records the photo on record as the replacement's own (the same object: it
// is content-addressed and stays referenced, so the orphan sweep keeps it) and moves the
// application to photo_approved: the photo was audited when the old card was made.
func (s *Service) reusePhoto(ctx context.Context, tx pgx.Tx, a *row, p *priorPhoto, actor Actor, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO application_photos (application_id, object_key, sha256, bytes, width, height,
		kiosk_id, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ID, p.key, p.sha, p.bytes, p.width, p.height, p.kioskID, p.uploadedAt); err != nil {
		return err
	}
	ev, err := notice(a, PhotoApproved, map[string]string{"photo": "reused"})
	if err != nil {
		return err
	}
	object := PhotoBucket + "/" + p.key
	if err := s.transition(ctx, tx, a, change{action: ActReusePhoto, actor: actor, photo: object,
		events: []event.Event{ev}}, at); err != nil {
		return err
	}
	a.PhotoObject = &object
	return nil
}

// cancelReplaced cancels (注销) the card a replacement supersedes, inside the activation's
// transaction, through the card register: its status change, history, blacklist entry,
// audit entry and CardStatusChanged event (loss-report's outbox: the bank and terminals
// hear of it) commit with the activation or not at all.
//
// The card rules accept 注销 at a counter with the holder's identity verified. This one is
// the bureau acting on its own record — the replacement, identity-checked when it was
// applied for and when the new card is activated — so it is recorded on the outlet channel
// with reason "replaced"; the application's history keeps the channel the holder used, and
// the request id ties the two. A card cancelled meanwhile (e.g. 挂失后注销 at a counter)
// needs nothing more.
func (s *Service) cancelReplaced(ctx context.Context, tx pgx.Tx, a *row, actor Actor, at time.Time) error {
	if a.ReplacesCardID == nil {
		return nil
	}
	_, err := s.cardRegister(at).ChangeTx(ctx, tx, card.Request{Card: *a.ReplacesCardID, Action: card.ActCancel,
		Channel: card.ChannelOutlet, Reason: "replaced", IdentityVerified: true, Actor: actor.ID, RequestID: actor.RequestID})
	var te *card.TransitionError
	if errors.As(err, &te) && te.Current == card.Cancelled {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cancel replaced card: %w", err)
	}
	return nil
}

// cardRegister is the card service card-apply issues and cancels cards through, its clock
// fixed at the transition's time.
func (s *Service) cardRegister(at time.Time) *card.Service {
	cfg := s.Cards
	if cfg.Codes == nil {
		cfg.Codes = card.DefaultCodes()
	}
	return &card.Service{Pool: s.Pool, Config: cfg, Audit: s.Audit, Now: func() time.Time { return at }}
}
