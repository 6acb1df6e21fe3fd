package application

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/card"
)

func TestCheckReplacement_Rules(t *testing.T) {
	cases := []struct {
		kind  events.ApplicationKind
		state CardState
		ok    bool
		named string // currentState in the 409
	}{
		// 补卡: formal loss, or cancelled after a loss.
		{events.KindReissue, CardState{Status: card.FormalLoss}, true, ""},
		{events.KindReissue, CardState{Status: card.Cancelled, CancelledAfterLoss: true}, true, ""},
		{events.KindReissue, CardState{Status: card.TemporaryLoss}, false, "temporary_loss"},
		{events.KindReissue, CardState{Status: card.Normal}, false, "normal"},
		{events.KindReissue, CardState{Status: card.Cancelled}, false, "cancelled"},
		// A temporary loss whose time ran out is a normal card.
		{events.KindReissue, CardState{Status: card.TemporaryLoss, TemporaryLossLapsed: true}, false, "normal"},
		// 换卡: a normal card only.
		{events.KindRenewal, CardState{Status: card.Normal}, true, ""},
		{events.KindRenewal, CardState{Status: card.TemporaryLoss, TemporaryLossLapsed: true}, true, ""},
		{events.KindRenewal, CardState{Status: card.TemporaryLoss}, false, "temporary_loss"},
		{events.KindRenewal, CardState{Status: card.FormalLoss}, false, "formal_loss"},
		{events.KindRenewal, CardState{Status: card.Cancelled, CancelledAfterLoss: true}, false, "cancelled"},
		{events.KindFirst, CardState{Status: card.Normal}, false, "normal"},
	}
	for _, c := range cases {
		p := CheckReplacement(c.kind, c.state)
		if (p == nil) != c.ok {
			t.Errorf("%s from %+v: want ok=%v, got %v", c.kind, c.state, c.ok, p)
			continue
		}
		if p == nil {
			continue
		}
		if p.Status != http.StatusConflict || p.Extra["currentState"] != c.named || p.Extra["rule"] != "replacement" {
			t.Errorf("%s from %+v: want 409 naming %s, got %d %v", c.kind, c.state, c.named, p.Status, p.Extra)
		}
		if _, ok := p.Extra["allowedFrom"].([]string); !ok {
			t.Errorf("%s from %+v: allowedFrom missing", c.kind, c.state)
		}
	}
	if got := ReplaceableFrom(events.KindReissue); !slices.Equal(got, []string{"formal_loss", "cancelled_after_loss"}) {
		t.Errorf("reissue allowed from %v", got)
	}
	if got := ReplaceableFrom(events.KindRenewal); !slices.Equal(got, []string{"normal"}) {
		t.Errorf("renewal allowed from %v", got)
	}
}

func TestValidateReplacement(t *testing.T) {
	base := ReplacementRequest{Request: Request{IDNumber: "11010519491231002X", Name: "张三", Phone: "13812345678", Channel: "h5"},
		Kind: events.KindReissue}
	with := func(f func(r *ReplacementRequest)) ReplacementRequest { r := base; f(&r); return r }
	cases := []struct {
		name   string
		req    ReplacementRequest
		status int
		fields []string
		reason string // the reason recorded when accepted
	}{
		{"reissue defaults to lost", base, 0, nil, "lost"},
		{"reissue stolen", with(func(r *ReplacementRequest) { r.Reason = "stolen" }), 0, nil, "stolen"},
		{"renewal damaged", with(func(r *ReplacementRequest) { r.Kind, r.Reason = events.KindRenewal, "damaged" }), 0, nil, "damaged"},
		{"renewal with card number", with(func(r *ReplacementRequest) { r.Kind, r.Reason, r.CardNo = events.KindRenewal, "expired", "s00000012" }), 0, nil, "expired"},
		{"no kind", with(func(r *ReplacementRequest) { r.Kind = "" }), 400, []string{"kind"}, ""},
		{"first is not a replacement", with(func(r *ReplacementRequest) { r.Kind = events.KindFirst }), 400, []string{"kind"}, ""},
		{"unknown kind", with(func(r *ReplacementRequest) { r.Kind = "upgrade" }), 400, []string{"kind"}, ""},
		{"renewal needs a reason", with(func(r *ReplacementRequest) { r.Kind = events.KindRenewal }), 400, []string{"reason"}, ""},
		{"renewal cannot be lost", with(func(r *ReplacementRequest) { r.Kind, r.Reason = events.KindRenewal, "lost" }), 400, []string{"reason"}, ""},
		{"reissue cannot be damaged", with(func(r *ReplacementRequest) { r.Reason = "damaged" }), 400, []string{"reason"}, ""},
		{"bad card number", with(func(r *ReplacementRequest) { r.CardNo = "12345" }), 400, []string{"cardNo"}, ""},
		{"applicant fields named too", with(func(r *ReplacementRequest) { r.Phone, r.Kind = "", "" }), 400, []string{"kind", "phone"}, ""},
	}
	for _, c := range cases {
		_, r, p := ValidateReplacement(c.req, now)
		if c.status == 0 {
			if p != nil {
				t.Errorf("%s: want accepted, got %v %v", c.name, p, p.InvalidParams)
			} else if r.reason != c.reason {
				t.Errorf("%s: reason %q, want %q", c.name, r.reason, c.reason)
			}
			continue
		}
		if p == nil || p.Status != c.status {
			t.Errorf("%s: want %d, got %v", c.name, c.status, p)
			continue
		}
		var named []string
		for _, f := range p.InvalidParams {
			named = append(named, f.Name)
		}
		slices.Sort(named)
		if !slices.Equal(named, c.fields) {
			t.Errorf("%s: fields %v, want %v", c.name, named, c.fields)
		}
	}
	// A permanent-residence ID through H5 stays the 422 of the channel rule.
	pr := with(func(r *ReplacementRequest) { r.IDNumber, r.Name, r.EnglishName = fpr(t, "840"), "", "SMITH JOHN" })
	if _, _, p := ValidateReplacement(pr, now); p == nil || p.Status != http.StatusUnprocessableEntity {
		t.Errorf("PR-ID via h5: want 422, got %v", p)
	}
}

func TestReplacementRequest_JSON(t *testing.T) {
	var r ReplacementRequest
	if err := json.Unmarshal([]byte(`{"idNumber":"11010519491231002X","name":"张三","phone":"13812345678","channel":"h5",
		"kind":"renewal","reason":"damaged","cardNo":"S00000001","reusePhoto":true}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.IDNumber == "" || r.Channel != "h5" || r.Kind != events.KindRenewal || r.Reason != "damaged" || r.CardNo != "S00000001" || !r.ReusePhoto {
		t.Fatalf("decoded %+v", r)
	}
}

func TestReusePhotoTransition(t *testing.T) {
	if to, ok := Next(Submitted, ActReusePhoto); !ok || to != PhotoApproved {
		t.Fatalf("photo.reuse from submitted: %s %v", to, ok)
	}
	for _, s := range []Status{PhotoPendingAudit, PhotoRejected, PhotoApproved, InProduction, Activated} {
		if _, ok := Next(s, ActReusePhoto); ok {
			t.Errorf("photo.reuse from %s must be illegal", s)
		}
	}
	if KindLabel(events.KindReissue) != "补卡" || KindLabel(events.KindRenewal) != "换卡" || KindLabel(events.KindFirst) != "首次申领" {
		t.Error("kind labels")
	}
}
