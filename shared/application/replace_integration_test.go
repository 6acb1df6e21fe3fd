//go:build integration

package application

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/problem"
)

// deliver moves every application one production step per round until id is delivered.
func (f *fixture) deliver(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		if _, err := f.svc.Advance(ctx, 100, Actor{}); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := f.svc.Get(ctx, id, false); v.Status != Delivered {
		t.Fatalf("%s: want delivered, got %s", id, v.Status)
	}
}

// holder is a resident whose first card was applied for, made and activated.
func (f *fixture) holder(t *testing.T) (Request, View) {
	t.Helper()
	ctx := context.Background()
	req := Request{IDNumber: randomResidentID(t), Name: "李四", Phone: "13812345678", Channel: "h5"}
	v, err := f.svc.Apply(ctx, req, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-1"}); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, v.ApplicationID)
	v, err = f.svc.Activate(ctx, v.ApplicationID, Actor{})
	if err != nil || v.Status != Activated || v.CardNo == "" {
		t.Fatalf("activate: %+v %v", v, err)
	}
	return req, v
}

func (f *fixture) cards() *card.Service {
	return &card.Service{Pool: f.pool, Config: card.Config{Codes: card.DefaultCodes(), TemporaryLossDays: 7}, Audit: f.svc.Audit}
}

func (f *fixture) cardStatus(t *testing.T, cardNo string) card.Status {
	t.Helper()
	c, err := f.cards().Get(context.Background(), cardNo)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status
}

func conflictState(err error) any {
	if p, ok := problem.As(err); ok && p.Status == 409 {
		return p.Extra["currentState"]
	}
	return err
}

// 补卡: the holder reports the card lost (temporary, then formal), applies for a reissue
// with the photo on record, and activating the new card cancels the old one in the same
// transaction: blacklisted, history, audit entry and event through loss-report's outbox.
func TestReplace_ReissueAfterLossCancelsTheOldCardOnActivation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, first := f.holder(t)
	oldNo := first.CardNo
	reissue := ReplacementRequest{Request: req, Kind: events.KindReissue, ReusePhoto: true}

	// A normal card is not reissued; renewing it would be.
	if _, err := f.svc.ApplyReplacement(ctx, reissue, Actor{}); conflictState(err) != "normal" {
		t.Fatalf("reissue of a normal card: want 409 normal, got %v", err)
	}
	// A temporary loss must be made formal first.
	if _, err := f.cards().Change(ctx, card.Request{Card: oldNo, Action: card.ActTemporaryLoss, Channel: card.ChannelPhone}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ApplyReplacement(ctx, reissue, Actor{}); conflictState(err) != "temporary_loss" {
		t.Fatalf("reissue under temporary loss: want 409 temporary_loss, got %v", err)
	}
	if _, err := f.cards().Change(ctx, card.Request{Card: oldNo, Action: card.ActFormalLoss, Channel: card.ChannelOnline,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	// A lost card is not renewed; a first application is refused (补换 instead).
	if _, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindRenewal, Reason: "damaged"}, Actor{}); conflictState(err) != "formal_loss" {
		t.Fatalf("renewal of a lost card: want 409 formal_loss, got %v", err)
	}
	if _, err := f.svc.Apply(ctx, req, Actor{}); conflictState(err) != "card_in_use" {
		t.Fatalf("first application with a lost card: want 409 card_in_use, got %v", err)
	}
	// Naming another card is refused.
	wrong := reissue
	wrong.CardNo = "Z99999999"
	if _, err := f.svc.ApplyReplacement(ctx, wrong, Actor{}); statusOf(err) != 422 {
		t.Fatalf("wrong card number: want 422, got %v", err)
	}

	v, err := f.svc.ApplyReplacement(ctx, reissue, Actor{RequestID: "req-reissue"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != events.KindReissue || v.KindLabel != "补卡" || v.Status != PhotoApproved || !v.HasPhoto ||
		v.ReplacesCardNo != oldNo || v.ReplacesCardID == "" || v.ReplaceReason != "lost" {
		t.Fatalf("reissue: %+v", v)
	}
	// The same application again: one open application per person.
	if _, err := f.svc.ApplyReplacement(ctx, reissue, Actor{}); statusOf(err) != 409 {
		t.Fatalf("second reissue: want 409, got %v", err)
	}
	// The event tells the producer it is a replacement of which card.
	var data events.ApplicationSubmittedData
	var raw []byte
	if err := f.pool.QueryRow(ctx, `SELECT event->'data' FROM outbox WHERE event_type = $1 AND event->>'subject' = $2`,
		string(events.ApplicationSubmitted), v.ApplicationID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &data); err != nil || data.Kind != events.KindReissue || data.ReplacesCardID != v.ReplacesCardID {
		t.Fatalf("submitted event: %s %v", raw, err)
	}

	// Activating early touches nothing.
	if _, err := f.svc.Activate(ctx, v.ApplicationID, Actor{}); conflictState(err) != "photo_approved" {
		t.Fatalf("early activation: want 409, got %v", err)
	}
	if st := f.cardStatus(t, oldNo); st != card.FormalLoss {
		t.Fatalf("old card after early activation: %s", st)
	}
	f.deliver(t, v.ApplicationID)
	got, err := f.svc.Activate(ctx, v.ApplicationID, Actor{RequestID: "req-activate"})
	if err != nil || got.Status != Activated || got.CardNo == "" || got.CardNo == oldNo {
		t.Fatalf("activate reissue: %+v %v", got, err)
	}
	if st := f.cardStatus(t, oldNo); st != card.Cancelled {
		t.Errorf("old card: want cancelled, got %s", st)
	}
	if st := f.cardStatus(t, got.CardNo); st != card.Normal {
		t.Errorf("new card: want normal, got %s", st)
	}
	snap, err := f.cards().Snapshot(ctx)
	if err != nil || !slices.ContainsFunc(snap.Cards, func(e card.Entry) bool { return e.CardNo == oldNo && e.Status == card.Cancelled }) {
		t.Errorf("old card not on the blacklist as cancelled: %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM cards c JOIN persons p USING (person_id) WHERE c.status <> 'cancelled'
		AND c.person_id = (SELECT person_id FROM applications WHERE application_id = $1)`, v.ApplicationID); n != 1 {
		t.Errorf("want exactly one usable card for the person, got %d", n)
	}
	hist, err := f.cards().History(ctx, oldNo)
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-1]
	if last.Action != card.ActCancel || last.From != card.FormalLoss || last.To != card.Cancelled || last.Reason != "replaced" {
		t.Errorf("old card's last history row: %+v", last)
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE object_id = $1 AND action = 'card.cancel' AND request_id = 'req-activate'`,
		v.ReplacesCardID); n != 1 {
		t.Errorf("want the cancel audited with the activation's request id, got %d", n)
	}
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE producer = 'loss-report' AND event_type = $1 AND event->>'subject' = $2
		AND event->'data'->>'to' = '5' AND event->'data'->>'reason' = 'replaced'`, string(events.CardStatusChanged), v.ReplacesCardID); n != 1 {
		t.Errorf("want one CardStatusChanged (→ cancelled, replaced) in loss-report's outbox, got %d", n)
	}
	// Application history: submit, photo reused, production, activation.
	full, _ := f.svc.Get(ctx, v.ApplicationID, true)
	var path []Action
	for _, h := range full.History {
		path = append(path, Action(h.Action))
	}
	if len(path) != 6 || path[1] != ActReusePhoto || path[5] != ActActivate {
		t.Errorf("history: %v", path)
	}
	// Progress shows both applications, the replacement first, with the old card.
	prog, err := f.svc.Progress(ctx, req.IDNumber)
	if err != nil || len(prog) != 2 || prog[0].Kind != events.KindReissue || prog[0].ReplacesCardNo != oldNo ||
		prog[1].Kind != events.KindFirst || prog[1].KindLabel != "首次申领" {
		t.Errorf("progress: %+v %v", prog, err)
	}
	// The lost card was replaced once; the new card is in use, so no reissue of it now.
	if _, err := f.svc.ApplyReplacement(ctx, reissue, Actor{}); conflictState(err) != "normal" {
		t.Errorf("reissue after reissue: want 409 normal (the new card), got %v", err)
	}
}

// 换卡: a damaged card in hand, a new photo; the old card is cancelled on activation.
func TestReplace_RenewalWithANewPhoto(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, first := f.holder(t)
	v, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindRenewal, Reason: "damaged",
		CardNo: first.CardNo}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != Submitted || v.HasPhoto || v.KindLabel != "换卡" {
		t.Fatalf("renewal: %+v", v)
	}
	// The old card stays usable while the new one is made.
	if st := f.cardStatus(t, first.CardNo); st != card.Normal {
		t.Fatalf("old card during renewal: %s", st)
	}
	if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 413, 579)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-2"}); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, v.ApplicationID)
	got, err := f.svc.Activate(ctx, v.ApplicationID, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if f.cardStatus(t, first.CardNo) != card.Cancelled || f.cardStatus(t, got.CardNo) != card.Normal {
		t.Errorf("after renewal: old %s, new %s", f.cardStatus(t, first.CardNo), f.cardStatus(t, got.CardNo))
	}
	// A cancelled card without a loss is not reissued; nor is a person without a card.
	if _, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: Request{IDNumber: randomResidentID(t), Name: "王五",
		Phone: "13812345678", Channel: "h5"}, Kind: events.KindReissue}, Actor{}); conflictState(err) != "no_card" {
		t.Errorf("no card: want 409 no_card, got %v", err)
	}
}

// A card cancelled at the counter while lost (挂失后注销) may be reissued; a photo on
// record that is too old is refused, naming reusePhoto.
func TestReplace_CancelledAfterLossAndOldPhoto(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, first := f.holder(t)
	if _, err := f.cards().Change(ctx, card.Request{Card: first.CardNo, Action: card.ActFormalLoss, Channel: card.ChannelOutlet,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cards().Change(ctx, card.Request{Card: first.CardNo, Action: card.ActCancel, Channel: card.ChannelOutlet,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE application_photos SET uploaded_at = uploaded_at - interval '3 years'`); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindReissue, ReusePhoto: true}, Actor{})
	if p, ok := problem.As(err); !ok || p.Status != 422 || len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != FieldReusePhoto {
		t.Fatalf("old photo: want 422 naming reusePhoto, got %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM applications`); n != 1 {
		t.Fatalf("a refused replacement records nothing, got %d applications", n)
	}
	v, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindReissue, Reason: "stolen"}, Actor{})
	if err != nil || v.Status != Submitted || v.ReplaceReason != "stolen" {
		t.Fatalf("reissue of a card cancelled after loss: %+v %v", v, err)
	}
	// Activation finds the old card cancelled already and leaves it so.
	if _, err := f.svc.UploadPhoto(ctx, v.ApplicationID, PhotoUpload{Body: jpegOf(t, 358, 441)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuditPhoto(ctx, v.ApplicationID, events.AuditApproved, "", Actor{ID: "op-3"}); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, v.ApplicationID)
	before := f.count(t, `SELECT count(*) FROM card_status_history WHERE card_id = $1`, v.ReplacesCardID)
	if _, err := f.svc.Activate(ctx, v.ApplicationID, Actor{}); err != nil {
		t.Fatal(err)
	}
	if after := f.count(t, `SELECT count(*) FROM card_status_history WHERE card_id = $1`, v.ReplacesCardID); after != before {
		t.Errorf("an already cancelled card changed again: %d → %d history rows", before, after)
	}
}

// Concurrent replacement applications for one person: exactly one is recorded.
func TestReplace_ConcurrentReplacementsYieldExactlyOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, first := f.holder(t)
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half ask for a renewal with the photo on record, half with a new photo.
			r := ReplacementRequest{Request: req, Kind: events.KindRenewal, Reason: "expired", ReusePhoto: i%2 == 0}
			_, err := f.svc.ApplyReplacement(ctx, r, Actor{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && statusOf(err) == 0 {
				t.Errorf("unexpected error: %v", err)
			}
			if err == nil {
				codes[201]++
			} else {
				codes[statusOf(err)]++
			}
		}()
	}
	wg.Wait()
	if codes[201] != 1 || codes[409] != n-1 {
		t.Fatalf("want 1 accepted and %d conflicts, got %v", n-1, codes)
	}
	if c := f.count(t, `SELECT count(*) FROM applications WHERE replaces_card_no = $1`, first.CardNo); c != 1 {
		t.Errorf("want one replacement, got %d", c)
	}
	// The database refuses a second replacement of one card even past the lock.
	_, err := f.pool.Exec(ctx, `INSERT INTO applications (application_id, person_id, channel, id_kind, details_enc, status,
		status_since, kind, replaces_card_id, replaces_card_no, replace_reason)
		SELECT 'app_' || md5(random()::text)::varchar(24), person_id, channel, id_kind, details_enc, 'activated', now(), kind,
			replaces_card_id, replaces_card_no, replace_reason FROM applications WHERE replaces_card_no = $1`, first.CardNo)
	if !db.UniqueViolation(err, "applications_replaces_once") {
		t.Errorf("second replacement of a card: want applications_replaces_once, got %v", err)
	}
}

// A card whose replacement is underway stays lost: unlocking it is refused naming the
// replacement; once the replacement is withdrawn (before production) the card can be
// unlocked, and after production starts the replacement can no longer be withdrawn.
func TestReplace_UnlockRefusedWhileAReplacementIsUnderway(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	req, first := f.holder(t)
	oldNo := first.CardNo
	if _, err := f.cards().Change(ctx, card.Request{Card: oldNo, Action: card.ActFormalLoss, Channel: card.ChannelOnline,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	v, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindReissue, ReusePhoto: true}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	unlock := card.Request{Card: oldNo, Action: card.ActUnlock, Channel: card.ChannelOutlet, IdentityVerified: true, Actor: "op-7"}
	var ru *card.ReplacementUnderwayError
	if _, err := f.cards().Change(ctx, unlock); !errors.As(err, &ru) || ru.ApplicationID != v.ApplicationID || ru.Current != card.FormalLoss {
		t.Fatalf("unlock with a replacement underway: want refused naming %s, got %v", v.ApplicationID, err)
	}
	if st := f.cardStatus(t, oldNo); st != card.FormalLoss {
		t.Fatalf("refused unlock changed the card: %s", st)
	}
	w, err := f.svc.Withdraw(ctx, v.ApplicationID, Actor{})
	if err != nil || w.Status != Withdrawn {
		t.Fatalf("withdraw: %+v %v", w, err)
	}
	if _, err := f.svc.Withdraw(ctx, v.ApplicationID, Actor{}); conflictState(err) != string(Withdrawn) {
		t.Fatalf("second withdrawal: want 409 withdrawn, got %v", err)
	}
	if res, err := f.cards().Change(ctx, unlock); err != nil || res.Card.Status != card.Normal {
		t.Fatalf("unlock after the withdrawal: %+v %v", res, err)
	}
	// In production a replacement cannot be withdrawn.
	if _, err := f.cards().Change(ctx, card.Request{Card: oldNo, Action: card.ActFormalLoss, Channel: card.ChannelOnline,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	v2, err := f.svc.ApplyReplacement(ctx, ReplacementRequest{Request: req, Kind: events.KindReissue, ReusePhoto: true}, Actor{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Advance(ctx, 100, Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Withdraw(ctx, v2.ApplicationID, Actor{}); conflictState(err) != string(InProduction) {
		t.Fatalf("withdraw in production: want 409 in_production, got %v", err)
	}
}

// An unlock that read the card before a replacement opened, and reaches the card while
// the replacement's transaction holds it (FOR SHARE, as replaceable does), is refused
// once that replacement commits: the change's guard sees what its first read could not.
func TestReplace_UnlockRacingAReplacementIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, first := f.holder(t)
	if _, err := f.cards().Change(ctx, card.Request{Card: first.CardNo, Action: card.ActFormalLoss, Channel: card.ChannelOnline,
		IdentityVerified: true}); err != nil {
		t.Fatal(err)
	}
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var cardID, appID string
	if err := tx.QueryRow(ctx, `SELECT card_id FROM cards WHERE card_no = $1 FOR SHARE`, first.CardNo).Scan(&cardID); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO applications (application_id, person_id, channel, id_kind, details_enc, status,
			status_since, kind, replaces_card_id, replaces_card_no, replace_reason)
		SELECT $1, person_id, channel, id_kind, details_enc, 'submitted', now(), 'reissue', $2, $3, 'lost'
		FROM applications WHERE application_id = $4 RETURNING application_id`,
		newApplicationID(), cardID, first.CardNo, first.ApplicationID).Scan(&appID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.cards().Change(ctx, card.Request{Card: first.CardNo, Action: card.ActUnlock, Channel: card.ChannelOutlet,
			IdentityVerified: true, Actor: "op-7"})
		done <- err
	}()
	// The unlock is waiting on the card's row lock.
	deadline := time.Now().Add(5 * time.Second)
	for f.count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the unlock never waited for the card: it did not reach the card's row")
		}
		select {
		case err := <-done:
			t.Fatalf("the unlock finished while the replacement held the card: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var ru *card.ReplacementUnderwayError
	if err := <-done; !errors.As(err, &ru) || ru.ApplicationID != appID || ru.Current != card.FormalLoss {
		t.Fatalf("unlock racing a replacement: want refused naming %s, got %v", appID, err)
	}
	if st := f.cardStatus(t, first.CardNo); st != card.FormalLoss {
		t.Fatalf("the refused unlock changed the card: %s", st)
	}
}
