//go:build integration

package tests

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/tests/testenv"
)

// Replacement (补换卡) through the local gateway: a resident with an activated card reports
// it lost (loss-report), applies for a reissue (补卡) with the photo on record, and the
// activation of the new card cancels the old one — blacklisted, told to the bank — while
// the new one is normal. Then a renewal (换卡) of the new card with a new photo; refusals
// are 409 problems naming the card's state; concurrent replacements yield one.
func TestCardReplace_ReissueAndRenewalThroughTheGateway(t *testing.T) {
	p := startPlatform(t)
	ensurePhotoBucket(t, p.env)
	const apply, loss = "/function/card-apply", "/function/loss-report"
	jsonH := http.Header{"Content-Type": {"application/json"}}
	outlet := p.register(t, "outlet-replace-01", channelauth.KindOutlet,
		append(channelauth.Routes(channelauth.KindOutlet), "POST card-apply /progress"))
	call := func(method, path string, body any, want int, out any) []byte {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		resp, got := p.do(t, method, path, jsonH, b)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: want %d, got %d %s", method, path, want, resp.StatusCode, got)
		}
		if want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: want problem+json, got %s", method, path, resp.Header.Get("Content-Type"))
		}
		if out != nil {
			if err := json.Unmarshal(got, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, got)
			}
		}
		return got
	}
	type view struct {
		ApplicationID, Status, Kind, KindLabel, CardNo, ReplacesCardNo, ReplacesCardID, ReplaceReason string
		HasPhoto                                                                                      bool
	}
	produce := func(id string) view {
		t.Helper()
		for range 3 {
			call("POST", apply+"/production/advance", nil, http.StatusOK, nil)
		}
		var v view
		call("POST", apply+"/applications/"+id+"/activate", nil, http.StatusOK, &v)
		if v.Status != "activated" || v.CardNo == "" {
			t.Fatalf("activate %s: %+v", id, v)
		}
		return v
	}
	approve := func(id string) {
		t.Helper()
		// The photo audit is the outlet's, a signed caller (shared/channelauth).
		if r := outlet.do(t, "card-apply", "POST", "/applications/"+id+"/photo-audit", jsonH, []byte(`{"result":"approved"}`)); r.StatusCode != 200 {
			t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
		}
	}
	cardStatus := func(no string) (status string, listed bool) {
		var c struct {
			Status string
			Listed bool
		}
		call("GET", loss+"/cards/"+no, nil, http.StatusOK, &c)
		return c.Status, c.Listed
	}

	// A first card, applied for, made and activated.
	idn := cardApplyID(fmt.Sprintf("320102%s%03d", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	person := map[string]any{"idNumber": idn, "name": "赵小燕", "phone": "13700137000", "channel": "h5"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range person {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	var first view
	call("POST", apply+"/applications", person, http.StatusCreated, &first)
	if resp, b := p.do(t, "PUT", apply+"/applications/"+first.ApplicationID+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t)); resp.StatusCode != 200 {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	approve(first.ApplicationID)
	first = produce(first.ApplicationID)
	oldNo := first.CardNo

	// Invalid replacement fields are named.
	b := call("POST", apply+"/replacements", with(map[string]any{"kind": "upgrade", "phone": ""}), http.StatusBadRequest, nil)
	if !strings.Contains(string(b), `"kind"`) || !strings.Contains(string(b), `"phone"`) {
		t.Errorf("invalid replacement: want kind and phone named, got %s", b)
	}
	// A normal card is not reissued (409 naming the state).
	b = call("POST", apply+"/replacements", with(map[string]any{"kind": "reissue", "reusePhoto": true}), http.StatusConflict, nil)
	if !strings.Contains(string(b), `"currentState":"normal"`) {
		t.Errorf("reissue of a normal card: %s", b)
	}
	// The holder reports it lost by phone, then formally online (identity verified by the
	// e-card login).
	call("POST", loss+"/cards/"+oldNo+"/loss", map[string]any{"type": "temporary", "channel": "phone"}, http.StatusOK, nil)
	b = call("POST", apply+"/replacements", with(map[string]any{"kind": "reissue"}), http.StatusConflict, nil)
	if !strings.Contains(string(b), `"currentState":"temporary_loss"`) {
		t.Errorf("reissue under temporary loss: %s", b)
	}
	call("POST", loss+"/cards/"+oldNo+"/loss", map[string]any{"type": "formal", "channel": "online", "identityVerified": true}, http.StatusOK, nil)
	b = call("POST", apply+"/replacements", with(map[string]any{"kind": "renewal", "reason": "damaged"}), http.StatusConflict, nil)
	if !strings.Contains(string(b), `"currentState":"formal_loss"`) {
		t.Errorf("renewal of a lost card: %s", b)
	}

	// 补卡 with the photo on record: straight to photo_approved.
	var re view
	call("POST", apply+"/replacements", with(map[string]any{"kind": "reissue", "reusePhoto": true, "cardNo": oldNo}), http.StatusCreated, &re)
	if re.Kind != "reissue" || re.KindLabel != "补卡" || re.Status != "photo_approved" || !re.HasPhoto || re.ReplacesCardNo != oldNo ||
		re.ReplaceReason != "lost" {
		t.Fatalf("reissue: %+v", re)
	}
	// While the replacement is underway the old card cannot be unlocked at the counter.
	if r := outlet.do(t, "loss-report", "POST", "/cards/"+oldNo+"/unlock", jsonH, []byte(`{"channel":"outlet","identityVerified":true}`)); r.StatusCode != http.StatusConflict ||
		!strings.Contains(string(r.Body), "replacement-underway") || !strings.Contains(string(r.Body), re.ApplicationID) {
		t.Errorf("unlock with a replacement underway: want 409 naming it, got %d %s", r.StatusCode, r.Body)
	}
	if st, _ := cardStatus(oldNo); st != "formal_loss" {
		t.Fatalf("old card before activation: %s", st)
	}
	newCard := produce(re.ApplicationID)
	if st, listed := cardStatus(oldNo); st != "cancelled" || !listed {
		t.Errorf("old card after the reissue: %s listed=%v", st, listed)
	}
	if st, listed := cardStatus(newCard.CardNo); st != "normal" || listed {
		t.Errorf("new card: %s listed=%v", st, listed)
	}
	var check struct {
		Listed bool
		Status string
	}
	call("GET", loss+"/blacklist/"+oldNo, nil, http.StatusOK, &check)
	if !check.Listed || check.Status != "cancelled" {
		t.Errorf("blacklist check of the old card: %+v", check)
	}
	var snap struct {
		Entries []struct{ CardNo, Status string }
	}
	body := call("GET", loss+"/blacklist/snapshot", nil, http.StatusOK, &snap)
	if !strings.Contains(string(body), oldNo) || strings.Contains(string(body), newCard.CardNo) {
		t.Errorf("snapshot: old card must be listed, new one not: %s", body)
	}
	var hist struct {
		History []struct{ Action, To, Reason string }
	}
	call("GET", loss+"/cards/"+oldNo+"/history", nil, http.StatusOK, &hist)
	if last := hist.History[len(hist.History)-1]; last.Action != "cancel" || last.To != "cancelled" || last.Reason != "replaced" {
		t.Errorf("old card's history: %+v", hist.History)
	}
	// The cancellation reaches the simulated bank through loss-report's outbox and the broker.
	testenv.Eventually(t, 60*time.Second, "the bank hearing of the cancelled card", func() bool {
		var bank struct{ StatusCode string }
		resp, b := p.do(t, "GET", loss+"/simulated-bank/cards/"+oldNo, nil, nil)
		return resp.StatusCode == 200 && json.Unmarshal(b, &bank) == nil && bank.StatusCode == "5"
	})

	// Progress shows the replacement, its kind and the old card.
	var prog struct{ Applications []view }
	sr := outlet.do(t, "card-apply", "POST", "/progress", nil, map[string]string{"idNumber": idn})
	body = sr.Body
	if sr.StatusCode != http.StatusOK || json.Unmarshal(body, &prog) != nil {
		t.Fatalf("progress: %d %s", sr.StatusCode, body)
	}
	if len(prog.Applications) != 2 || prog.Applications[0].Kind != "reissue" || prog.Applications[0].ReplacesCardNo != oldNo ||
		prog.Applications[1].Kind != "first" || strings.Contains(string(body), idn) {
		t.Errorf("progress: %s", body)
	}

	// 换卡 of the new card, damaged; concurrent requests yield one.
	var wg sync.WaitGroup
	codes := make([]int, 6)
	var renewal view
	var mu sync.Mutex
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rb, _ := json.Marshal(with(map[string]any{"kind": "renewal", "reason": "damaged"}))
			resp, got := p.do(t, "POST", apply+"/replacements", jsonH, rb)
			codes[i] = resp.StatusCode
			if resp.StatusCode == http.StatusCreated {
				mu.Lock()
				_ = json.Unmarshal(got, &renewal)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("concurrent renewals: unexpected %v", codes)
		}
	}
	if created != 1 || renewal.Status != "submitted" || renewal.ReplacesCardNo != newCard.CardNo {
		t.Fatalf("concurrent renewals: want exactly one, got %v %+v", codes, renewal)
	}
	if resp, b := p.do(t, "PUT", apply+"/applications/"+renewal.ApplicationID+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t)); resp.StatusCode != 200 {
		t.Fatalf("renewal photo: %d %s", resp.StatusCode, b)
	}
	approve(renewal.ApplicationID)
	// The damaged card stays usable until the new one is activated.
	if st, _ := cardStatus(newCard.CardNo); st != "normal" {
		t.Errorf("card during renewal: %s", st)
	}
	third := produce(renewal.ApplicationID)
	if st, _ := cardStatus(newCard.CardNo); st != "cancelled" {
		t.Errorf("renewed card: want cancelled, got %s", st)
	}
	if st, _ := cardStatus(third.CardNo); st != "normal" {
		t.Errorf("renewal's card: want normal, got %s", st)
	}
	// Someone without a card has nothing to replace.
	other := cardApplyID(fmt.Sprintf("320102%s%03d", time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(9000)).Format("20060102"), rand.IntN(1000)))
	b = call("POST", apply+"/replacements", map[string]any{"idNumber": other, "name": "钱七", "phone": "13600136000", "channel": "h5",
		"kind": "reissue"}, http.StatusConflict, nil)
	if !strings.Contains(string(b), `"currentState":"no_card"`) {
		t.Errorf("no card: %s", b)
	}
}
