//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/tests/testenv"
)

// startSMSPlatform is the local platform with sms-alert sending through a CMPP simulator
// (the mobile and fallback channels, as make run sets them up).
func startSMSPlatform(t *testing.T) (*localPlatform, *smssim.Sim) {
	t.Helper()
	sim, err := smssim.StartCMPP("127.0.0.1:0", map[string]string{"901234": "e2e-sim-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.DelayReports(50 * time.Millisecond)
	p := startPlatform(t, "SMS_MOBILE_ADDR="+sim.Addr(), "SMS_FALLBACK_ADDR="+sim.Addr(), "SMS_SIM_SECRET=e2e-sim-secret")
	return p, sim
}

func textsTo(sim *smssim.Sim, phone string) []string {
	var out []string
	for _, m := range sim.Received() {
		if m.Dest == phone {
			out = append(out, m.Text)
		}
	}
	return out
}

// A card application's milestones reach the applicant's phone through the simulated China
// Mobile gateway: the photo audit outcome, production, mailing with the waybill, delivery
// and activation — each once, and each record ends delivered by the gateway's report.
func TestSMS_CardApplicationMilestonesReachTheApplicantsPhone(t *testing.T) {
	p, sim := startSMSPlatform(t)
	ensurePhotoBucket(t, p.env)
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	base := "/function/card-apply"
	outlet := p.register(t, "outlet-sms-01", channelauth.KindOutlet, nil)
	jsonH := http.Header{"Content-Type": {"application/json"}}
	phone := fmt.Sprintf("1380013%04d", rand.IntN(10000))
	idn := cardApplyID(fmt.Sprintf("440308%s%03d", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	body, _ := json.Marshal(map[string]string{"idNumber": idn, "name": "陈小明", "phone": phone, "channel": "h5"})
	resp, b := p.do(t, "POST", base+"/applications", jsonH, body)
	if resp.StatusCode != 201 {
		t.Fatalf("apply: %d %s", resp.StatusCode, b)
	}
	var app appView
	_ = json.Unmarshal(b, &app)
	id := app.ApplicationID
	if resp, b = p.do(t, "PUT", base+"/applications/"+id+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t)); resp.StatusCode != 200 {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	if r := outlet.do(t, "card-apply", "POST", "/applications/"+id+"/photo-audit", jsonH, []byte(`{"result":"approved"}`)); r.StatusCode != 200 {
		t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
	}
	for range 3 {
		if resp, b = p.do(t, "POST", base+"/production/advance", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("advance: %d %s", resp.StatusCode, b)
		}
	}
	if resp, b = p.do(t, "POST", base+"/applications/"+id+"/activate", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("activate: %d %s", resp.StatusCode, b)
	}
	var waybill string
	_ = pool.QueryRow(ctx, `SELECT waybill_no FROM applications WHERE application_id = $1`, id).Scan(&waybill)
	want := []string{
		"您提交的社保卡照片已审核通过。",
		"您的社保卡已进入制卡环节，制成后将尽快寄出。",
		"您的社保卡已由EMS寄出，运单号" + waybill + "，请注意查收。",
		"您的社保卡已送达，请按提示启用后使用。",
		"您的社保卡已启用，可正常使用。",
	}
	testenv.Eventually(t, 30*time.Second, "five milestone SMS at the simulator", func() bool { return len(textsTo(sim, phone)) >= len(want) })
	time.Sleep(time.Second) // a duplicate would arrive now
	got := textsTo(sim, phone)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("SMS to the applicant:\n got %q\nwant %q", got, want)
	}
	testenv.Eventually(t, 20*time.Second, "every record delivered by report", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM sms_messages WHERE status = 'delivered' AND carrier = 'cmpp'`).Scan(&n)
		return n == len(want)
	})
	// The dead letters of the broker hold no SMSRequested any more.
	resp, b = p.do(t, "GET", "/broker/dead-letters", nil, nil)
	if strings.Contains(string(b), "sms.requested") {
		t.Errorf("SMSRequested dead-lettered: %s", b)
	}
}

// Signed HTTP: staff administer a contact group and read the daily report; a service sends
// to the group (once per message id) and issues and checks a verification code; unsigned
// calls are refused.
func TestSMS_SignedHTTPGroupsCodesAndReport(t *testing.T) {
	p, sim := startSMSPlatform(t)
	staff := p.register(t, "sms-staff-01", "staff", []string{"GET sms-alert /groups", "PUT sms-alert /groups/{group}/members/{member}",
		"GET sms-alert /reports/daily", "GET sms-alert /messages"})
	svc := p.register(t, "login-poll-svc", "service", []string{"POST sms-alert /messages", "POST sms-alert /codes",
		"POST sms-alert /codes/verify"})
	jsonH := http.Header{"Content-Type": {"application/json"}}

	if resp, _ := p.do(t, "GET", "/function/sms-alert/groups", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("unsigned: want 401, got %d", resp.StatusCode)
	}
	if r := svc.do(t, "sms-alert", "GET", "/groups", nil, nil); r.StatusCode != 403 {
		t.Fatalf("service reading groups: want 403, got %d", r.StatusCode)
	}
	r := staff.do(t, "sms-alert", "PUT", "/groups/photo-audit-managers/members/mgr-01", jsonH, map[string]string{"phone": "13912345678"})
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), "139****5678") || strings.Contains(string(r.Body), "13912345678") {
		t.Fatalf("put member: %d %s", r.StatusCode, r.Body)
	}
	msg := map[string]any{"messageId": "overdue:2026-12-04", "template": "photo_audit_overdue", "params": map[string]string{"count": "5"},
		"recipientRef": "group:photo-audit-managers", "purpose": "alert"}
	for range 2 {
		if r = svc.do(t, "sms-alert", "POST", "/messages", jsonH, msg); r.StatusCode != 202 {
			t.Fatalf("send: %d %s", r.StatusCode, r.Body)
		}
	}
	if !strings.Contains(string(r.Body), `"repeated":true`) {
		t.Errorf("second send not marked repeated: %s", r.Body)
	}
	testenv.Eventually(t, 20*time.Second, "alert at the simulator", func() bool { return len(textsTo(sim, "13912345678")) == 1 })
	if got := textsTo(sim, "13912345678"); got[0] != "有5张社保卡照片审核超期，请尽快审核。" {
		t.Fatalf("alert text %q", got[0])
	}
	bad := svc.do(t, "sms-alert", "POST", "/messages", jsonH, map[string]any{"messageId": "x", "template": "nope", "recipientRef": "group:photo-audit-managers", "purpose": "alert"})
	if bad.StatusCode != 422 || !strings.Contains(string(bad.Body), "template") {
		t.Errorf("unknown template: %d %s", bad.StatusCode, bad.Body)
	}

	// Verification code: issued, limited, checked.
	phone := fmt.Sprintf("1860000%04d", rand.IntN(10000))
	code := map[string]string{"phone": phone, "purpose": "change-phone", "client": "session-1"}
	if r = svc.do(t, "sms-alert", "POST", "/codes", jsonH, code); r.StatusCode != 202 || !strings.Contains(string(r.Body), "186****") {
		t.Fatalf("code: %d %s", r.StatusCode, r.Body)
	}
	if r = svc.do(t, "sms-alert", "POST", "/codes", jsonH, code); r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second code at once: want 429 with Retry-After, got %d %s", r.StatusCode, r.Body)
	}
	testenv.Eventually(t, 20*time.Second, "code at the simulator", func() bool { return len(textsTo(sim, phone)) == 1 })
	text := textsTo(sim, phone)[0]
	digits := strings.TrimPrefix(strings.SplitN(text, "，", 2)[0], "您的验证码为")
	if r = svc.do(t, "sms-alert", "POST", "/codes/verify", jsonH, map[string]string{"phone": phone, "purpose": "change-phone", "code": "x"}); r.StatusCode != 422 {
		t.Fatalf("wrong code: %d %s", r.StatusCode, r.Body)
	}
	if r = svc.do(t, "sms-alert", "POST", "/codes/verify", jsonH, map[string]string{"phone": phone, "purpose": "change-phone", "code": digits}); r.StatusCode != 200 {
		t.Fatalf("right code: %d %s", r.StatusCode, r.Body)
	}

	// The daily report (today, China time) counts them by carrier, template and status.
	var rep struct {
		Total int
		Rows  []struct {
			Carrier, Template, Status string
			Messages                  int
		}
	}
	testenv.Eventually(t, 20*time.Second, "report with both delivered", func() bool {
		r := staff.do(t, "sms-alert", "GET", "/reports/daily", nil, nil)
		_ = json.Unmarshal(r.Body, &rep)
		delivered := 0
		for _, row := range rep.Rows {
			if row.Carrier == "cmpp" && row.Status == "delivered" {
				delivered += row.Messages
			}
		}
		return r.StatusCode == 200 && delivered == 2
	})
}
