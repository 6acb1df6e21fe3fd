//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
)

// The bank, outlet and kiosk channels of loss-report and card-apply take only signed
// calls from a registered caller of that kind, allowed on the route, and record the
// caller's app id; the phone and online channels need no signature (see the other tests).
func TestSignedChannels_BankOutletKiosk(t *testing.T) {
	p := startPlatform(t, "local_card_issuing=true")
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	jsonH := http.Header{"Content-Type": {"application/json"}}
	bank := p.register(t, "bank-test-01", channelauth.KindBank, nil)
	kiosk := p.register(t, "kiosk-test-01", channelauth.KindKiosk, nil)
	applyOnly := p.register(t, "kiosk-test-02", channelauth.KindKiosk, []string{"POST card-apply /applications"})
	if _, err := pool.Exec(ctx, `INSERT INTO kiosks (kiosk_id, registered, last_seen_at, last_status, reader_present)
		VALUES ('kiosk-test-01', true, now(), 'ok', true), ('kiosk-test-02', true, now(), 'ok', true)`); err != nil {
		t.Fatal(err)
	}
	const cardNo = "S00000017"
	if resp, b := p.do(t, "POST", "/function/loss-report/cards", jsonH, []byte(`{"cardNo":"`+cardNo+`"}`)); resp.StatusCode != 201 {
		t.Fatalf("create card: %d %s", resp.StatusCode, b)
	}
	lossPath := "/cards/" + cardNo + "/loss"
	temporary := map[string]any{"type": "temporary", "channel": "bank"}

	// Unsigned on the bank channel: callsign's uniform 401 problem, unsigned.
	resp, b := p.do(t, "POST", "/function/loss-report"+lossPath, jsonH, []byte(`{"type":"temporary","channel":"bank"}`))
	var unsigned map[string]any
	_ = json.Unmarshal(b, &unsigned)
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" ||
		unsigned["title"] != "Unauthenticated" || resp.Header.Get(callsign.HeaderSignature) != "" {
		t.Fatalf("unsigned bank call: want the uniform 401, got %d %s", resp.StatusCode, b)
	}
	// Signed with a key the bank never registered: the same 401.
	otherKey, _ := gm.GenerateKey()
	forged := &signer{p: p, appID: bank.appID, key: otherKey}
	if r := forged.do(t, "loss-report", "POST", lossPath, nil, temporary); r.StatusCode != 401 || r.Signed ||
		!strings.Contains(string(r.Body), unsigned["detail"].(string)) {
		t.Fatalf("wrong key: want the uniform 401, got %d %s", r.StatusCode, r.Body)
	}
	// A registered caller whose routes do not include this one: 403, signed.
	if r := applyOnly.do(t, "loss-report", "POST", lossPath, nil, map[string]any{"type": "formal", "channel": "kiosk",
		"identityVerified": true}); r.StatusCode != 403 || !r.Signed {
		t.Fatalf("caller not allowed on the route: want 403, got %d %s", r.StatusCode, r.Body)
	}
	// The bank may not speak for another channel, nor name another actor.
	if r := bank.do(t, "loss-report", "POST", lossPath, nil, map[string]any{"type": "temporary", "channel": "online"}); r.StatusCode != 403 {
		t.Errorf("bank on the online channel: want 403, got %d %s", r.StatusCode, r.Body)
	}
	if r := bank.do(t, "loss-report", "POST", lossPath, nil, map[string]any{"type": "temporary", "channel": "bank",
		"operator": "teller-7"}); r.StatusCode != 403 {
		t.Errorf("bank naming another operator: want 403, got %d %s", r.StatusCode, r.Body)
	}

	// Accepted: the bank's app id is the recorded actor.
	if r := bank.do(t, "loss-report", "POST", lossPath, nil, temporary); r.StatusCode != 200 || !r.Signed ||
		!strings.Contains(string(r.Body), `"temporary_loss"`) {
		t.Fatalf("signed bank loss: %d %s", r.StatusCode, r.Body)
	}
	lastActor := func() (actor, channel string) {
		t.Helper()
		r := bank.do(t, "loss-report", "GET", "/cards/"+cardNo+"/history", nil, nil)
		var h struct {
			History []struct{ Actor, Channel string }
		}
		if err := json.Unmarshal(r.Body, &h); err != nil || r.StatusCode != 200 || !r.Signed || len(h.History) == 0 {
			t.Fatalf("history: %d %s", r.StatusCode, r.Body)
		}
		last := h.History[len(h.History)-1]
		return last.Actor, last.Channel
	}
	if a, ch := lastActor(); a != "bank-test-01" || ch != "bank" {
		t.Errorf("recorded actor %q on %q, want bank-test-01 on bank", a, ch)
	}

	// The same signed request sent twice: the replay is refused.
	c := bank.client(t, "loss-report", false)
	hr, _, err := c.NewHTTPRequest(ctx, callsign.Request{Method: "POST", Path: "/cards/" + cardNo + "/unlock",
		Body: []byte(`{"channel":"bank"}`), ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	replay := hr.Clone(ctx)
	replay.Body, _ = hr.GetBody()
	for i, want := range []int{200, 401} {
		r := hr
		if i == 1 {
			r = replay
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("send %d of one signed unlock: want %d, got %d %s", i+1, want, resp.StatusCode, body)
		}
	}

	// A kiosk, enveloped: a formal loss at the kiosk, recorded under its own id.
	r, err := kiosk.client(t, "loss-report", true).Do(ctx, callsign.Request{Method: "POST", Path: lossPath,
		Body: []byte(`{"type":"formal","channel":"kiosk","identityVerified":true}`), ContentType: "application/json"})
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("enveloped kiosk formal loss: %v %+v", err, r)
	}
	if a, ch := lastActor(); a != "kiosk-test-01" || ch != "kiosk" {
		t.Errorf("recorded actor %q on %q, want kiosk-test-01 on kiosk", a, ch)
	}

	// card-apply: a kiosk applies only under its own kiosk id.
	app := func(kioskID string) map[string]string {
		return map[string]string{"idNumber": cardApplyID("44030819800101" + kioskID[len(kioskID)-2:] + "1"), "name": "林一",
			"phone": "13800138000", "channel": "kiosk", "kioskId": kioskID}
	}
	if resp, b := p.do(t, "POST", "/function/card-apply/applications", jsonH, mustJSON(app("kiosk-test-01"))); resp.StatusCode != 401 {
		t.Errorf("unsigned kiosk application: want 401, got %d %s", resp.StatusCode, b)
	}
	if r := kiosk.do(t, "card-apply", "POST", "/applications", nil, app("kiosk-test-02")); r.StatusCode != 403 ||
		!strings.Contains(string(r.Body), "caller-mismatch") {
		t.Errorf("kiosk-test-01 claiming kiosk-test-02: want 403, got %d %s", r.StatusCode, r.Body)
	}
	r = kiosk.do(t, "card-apply", "POST", "/applications", nil, app("kiosk-test-01"))
	var created struct{ ApplicationID string }
	if _ = json.Unmarshal(r.Body, &created); r.StatusCode != 201 || created.ApplicationID == "" {
		t.Fatalf("kiosk application under its own id: %d %s", r.StatusCode, r.Body)
	}
	var actor, kioskID string
	if err := pool.QueryRow(ctx, `SELECT h.actor, a.kiosk_id FROM application_history h JOIN applications a USING (application_id)
		WHERE application_id = $1 AND h.seq = 0`, created.ApplicationID).Scan(&actor, &kioskID); err != nil ||
		actor != "kiosk-test-01" || kioskID != "kiosk-test-01" {
		t.Errorf("recorded %q at kiosk %q (%v), want kiosk-test-01 for both", actor, kioskID, err)
	}
	// The bank applies on its own channel without naming it.
	bankApp := map[string]string{"idNumber": cardApplyID("44030819810202551"), "name": "林二", "phone": "13800138001"}
	r = bank.do(t, "card-apply", "POST", "/applications", nil, bankApp)
	var bankCreated struct{ ApplicationID string }
	if _ = json.Unmarshal(r.Body, &bankCreated); r.StatusCode != 201 || !strings.Contains(string(r.Body), `"channel":"bank"`) {
		t.Fatalf("bank application: %d %s", r.StatusCode, r.Body)
	}
	// Its photo comes from the bank too: an unsigned upload (anyone knowing the id) is refused.
	photoPath := "/applications/" + bankCreated.ApplicationID + "/photo"
	jpegH := http.Header{"Content-Type": {"image/jpeg"}}
	if resp, b := p.do(t, "PUT", "/function/card-apply"+photoPath, jpegH, idPhoto(t)); resp.StatusCode != 403 ||
		!strings.Contains(string(b), "photo-channel") {
		t.Errorf("unsigned photo for a bank application: want 403 photo-channel, got %d %s", resp.StatusCode, b)
	}
	if r := bank.do(t, "card-apply", "PUT", photoPath, jpegH, idPhoto(t)); r.StatusCode != 200 ||
		!strings.Contains(string(r.Body), `"status":"photo_pending_audit"`) {
		t.Errorf("signed bank photo: want 200, got %d %s", r.StatusCode, r.Body)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
