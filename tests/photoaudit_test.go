//go:build integration

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/tests/testenv"
)

// query sends a signed GET with a query string and returns the verified answer.
func (s *signer) query(t *testing.T, fn, path string, q url.Values) *callsign.Response {
	t.Helper()
	resp, err := s.client(t, fn, false).Do(context.Background(), callsign.Request{Method: "GET", Path: path, Query: q})
	if err != nil {
		t.Fatalf("GET %s %s as %s: %v", fn, path, s.appID, err)
	}
	return resp
}

// ping is a Knative PingSource tick due at at, sent through the gateway to the function.
func (p *localPlatform) ping(t *testing.T, fn string, at time.Time) (int, map[string]any) {
	t.Helper()
	h := http.Header{}
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", fmt.Sprintf("ping-%d", rand.Int64()))
	h.Set("Ce-Source", "/apis/v1/namespaces/sscard/pingsources/"+fn)
	h.Set("Ce-Type", "dev.knative.sources.ping")
	h.Set("Ce-Time", at.UTC().Format(time.RFC3339))
	h.Set("Content-Type", "application/json")
	resp, b := p.do(t, "POST", "/function/"+fn, h, []byte(`{}`))
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// applyH5 files an application on the H5 channel (no photo) and returns its id.
func (p *localPlatform) applyH5(t *testing.T, name string) string {
	t.Helper()
	idn := cardApplyID(fmt.Sprintf("440308%s%03d", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102"), rand.IntN(1000)))
	body, _ := json.Marshal(map[string]string{"idNumber": idn, "name": name, "phone": "13800138000", "channel": "h5"})
	resp, b := p.do(t, "POST", "/function/card-apply/applications", http.Header{"Content-Type": {"application/json"}}, body)
	var app appView
	if err := json.Unmarshal(b, &app); resp.StatusCode != 201 || err != nil {
		t.Fatalf("apply: %d %s", resp.StatusCode, b)
	}
	return app.ApplicationID
}

// A photo submitted on Thursday 2026-12-03 at 23:30 China time and left unaudited: the
// scheduled run on Tuesday sends nothing, Wednesday's sends one SMSRequested to the audit
// managers' group, a rerun that day nothing new; staff query and export it; the calendar
// changes the answer. Time is driven by the PingSource tick's time
// (photo_audit_trigger_clock), never by waiting.
func TestPhotoAudit_ThursdayPhotoAlertsOnWednesdayThroughTheGateway(t *testing.T) {
	// sms-alert sends through the China Mobile (CMPP) simulator, as in tests/sms_test.go.
	sim, err := smssim.StartCMPP("127.0.0.1:0", map[string]string{"901234": "e2e-sim-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	p := startPlatform(t, "photo_audit_trigger_clock=true", "photo_audit_providers=kiosk=Kiosk Audit Co",
		"SMS_MOBILE_ADDR="+sim.Addr(), "SMS_FALLBACK_ADDR="+sim.Addr(), "SMS_SIM_SECRET=e2e-sim-secret")
	ensurePhotoBucket(t, p.env)
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	base := "/function/card-apply"
	// Every caller is registered before the first signed call (a function reloads its
	// registry snapshot at most every 30 s): an outlet, the preset staff role, and a staff
	// caller granted full values, calendar changes and the SMS contact groups.
	outlet := p.register(t, "outlet-pa-01", channelauth.KindOutlet, nil)
	staff := p.register(t, "staff-pa-report", channelauth.KindStaff, nil)
	privileged := p.register(t, "staff-pa-full", channelauth.KindStaff, append(channelauth.Routes(channelauth.KindStaff),
		"GET photo-audit-alert /overdue/export/full", "PUT photo-audit-alert /calendar/{date}", "DELETE photo-audit-alert /calendar/{date}",
		"PUT sms-alert /groups/{group}/members/{member}"))
	jsonH := http.Header{"Content-Type": {"application/json"}}

	// The audit managers: two members of sms-alert's contact group.
	managers := []string{fmt.Sprintf("1391234%04d", rand.IntN(5000)), fmt.Sprintf("1391234%04d", 5000+rand.IntN(5000))}
	for i, phone := range managers {
		if r := privileged.do(t, "sms-alert", "PUT", fmt.Sprintf("/groups/photo-audit-managers/members/mgr-%d", i), jsonH,
			map[string]string{"phone": phone}); r.StatusCode != 200 {
			t.Fatalf("group member: %d %s", r.StatusCode, r.Body)
		}
	}

	// 1. A real application with its photo through card-apply: its PhotoSubmitted (stamped
	//    now) reaches photo-audit-alert through the broker and starts the clock.
	fresh := p.applyH5(t, "陈小明")
	resp, b := p.do(t, "PUT", base+"/applications/"+fresh+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t))
	if resp.StatusCode != 200 {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	// 2. A second one, audited at the outlet: PhotoAudited stops its clock.
	audited := p.applyH5(t, "李小红")
	if resp, b = p.do(t, "PUT", base+"/applications/"+audited+"/photo", http.Header{"Content-Type": {"image/jpeg"}}, idPhoto(t)); resp.StatusCode != 200 {
		t.Fatalf("photo: %d %s", resp.StatusCode, b)
	}
	if r := outlet.do(t, "card-apply", "POST", "/applications/"+audited+"/photo-audit", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"result":"approved"}`)); r.StatusCode != 200 {
		t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
	}
	// 3. The Thursday photo: card-apply stamps PhotoSubmitted with its own clock, which a test
	//    cannot set, so the test publishes the event card-apply emits, dated Thursday 23:30
	//    China time (15:30 UTC), through card-apply's outbox, for an application filed through card-apply.
	thursday := p.applyH5(t, "张三丰")
	thuAt := time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC)
	ev, err := events.New(events.PhotoSubmitted, "/functions/card-apply", thursday, events.PhotoSubmittedData{ApplicationID: thursday,
		PhotoObject: "photos/" + thursday + ".jpg", Channel: events.ChannelKiosk, KioskID: "kiosk-pa-1", SubmittedAt: thuAt})
	if err != nil {
		t.Fatal(err)
	}
	p.emit(t, pool, ev)
	testenv.Eventually(t, 30*time.Second, "the three audit clocks (two pending, one stopped)", func() bool {
		var pending, stopped int
		_ = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE audited_at IS NULL), count(*) FILTER (WHERE audited_at IS NOT NULL)
			FROM photo_audit_clock WHERE application_id IN ($1, $2, $3)`, fresh, audited, thursday).Scan(&pending, &stopped)
		return pending == 2 && stopped == 1
	})
	var provider string
	_ = pool.QueryRow(ctx, `SELECT provider FROM photo_audit_clock WHERE application_id = $1`, thursday).Scan(&provider)
	if provider != "Kiosk Audit Co" {
		t.Errorf("provider of the kiosk photo: %q", provider)
	}

	alerts := func() []events.SMSRequestedData {
		rows, err := pool.Query(ctx, `SELECT event FROM outbox WHERE producer = 'photo-audit-alert' AND event_type = $1 ORDER BY id`,
			string(events.SMSRequested))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []events.SMSRequestedData
		for rows.Next() {
			var body []byte
			var e event.Event
			if rows.Scan(&body) != nil || json.Unmarshal(body, &e) != nil {
				t.Fatal("outbox row unreadable")
			}
			d, err := events.Decode[events.SMSRequestedData](e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}

	// 4. Tuesday 10:00 China time: Friday, Monday, … only two working days have passed.
	status, out := p.ping(t, "photo-audit-alert", time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC))
	if status != 200 || out["outcome"] != "none-overdue" || len(alerts()) != 0 {
		t.Fatalf("Tuesday run: %d %v, alerts %v; want nothing sent", status, out, alerts())
	}
	// 5. Wednesday 09:00: Friday, Monday, Tuesday have passed → one overdue, one request.
	status, out = p.ping(t, "photo-audit-alert", time.Date(2026, 12, 9, 1, 0, 0, 0, time.UTC))
	if status != 200 || out["outcome"] != "sent" || out["overdue"] != float64(1) {
		t.Fatalf("Wednesday run: %d %v", status, out)
	}
	got := alerts()
	if len(got) != 1 || got[0].MessageID != "photo-audit-overdue-2026-12-09" || got[0].Template != "photo_audit_overdue" ||
		got[0].Params["count"] != "1" || got[0].RecipientRef != "group:photo-audit-managers" || got[0].Purpose != events.PurposeAlert {
		t.Fatalf("Wednesday alert: %+v", got)
	}
	// 6. Rerun at 17:00 the same day (and the cron's empty POST): nothing new.
	status, out = p.ping(t, "photo-audit-alert", time.Date(2026, 12, 9, 9, 0, 0, 0, time.UTC))
	if status != 200 || out["outcome"] != "already-ran" || len(alerts()) != 1 {
		t.Fatalf("Wednesday rerun: %d %v, %d alerts", status, out, len(alerts()))
	}
	// The relay delivers it, sms-alert expands the group: each manager's phone gets the exact
	// text once, at the simulated China Mobile gateway; nothing came on Tuesday.
	const text = "有1张社保卡照片审核超期，请尽快审核。"
	testenv.Eventually(t, 30*time.Second, "the alert at the simulator for each manager", func() bool {
		return len(textsTo(sim, managers[0])) >= 1 && len(textsTo(sim, managers[1])) >= 1
	})
	time.Sleep(time.Second) // a duplicate would arrive now
	for _, phone := range managers {
		if got := textsTo(sim, phone); len(got) != 1 || got[0] != text {
			t.Errorf("SMS to a manager: %q, want exactly [%q]", got, text)
		}
	}

	// 7. Staff query: signed staff only; per provider and total.
	q := url.Values{"asOf": {"2026-12-09"}, "threshold": {"3"}}
	r := staff.query(t, "photo-audit-alert", "/overdue", q)
	var rep struct {
		Total     int
		Providers []struct {
			Provider string
			Overdue  int
		}
	}
	if err := json.Unmarshal(r.Body, &rep); r.StatusCode != 200 || err != nil || rep.Total != 1 ||
		fmt.Sprint(rep.Providers) != "[{Kiosk Audit Co 1} {third-party-audit 0}]" {
		t.Fatalf("query: %d %s", r.StatusCode, r.Body)
	}
	if resp, b := p.do(t, "GET", "/function/photo-audit-alert/overdue?asOf=2026-12-09", nil, nil); resp.StatusCode != 401 {
		t.Errorf("unsigned query: want 401, got %d %s", resp.StatusCode, b)
	}
	if r := outlet.query(t, "photo-audit-alert", "/overdue", q); r.StatusCode != 403 {
		t.Errorf("outlet caller: want 403, got %d %s", r.StatusCode, r.Body)
	}
	if r := staff.query(t, "photo-audit-alert", "/overdue", url.Values{"threshold": {"0"}}); r.StatusCode != 400 ||
		!strings.Contains(string(r.Body), `"threshold"`) {
		t.Errorf("threshold 0: want 400 naming threshold, got %d %s", r.StatusCode, r.Body)
	}

	// 8. Export: masked for the preset staff role, which may not fetch the full one; full for
	//    a caller granted it. Both in the audit chain.
	rows := func(r *callsign.Response) [][]string {
		f, err := excelize.OpenReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatalf("xlsx: %v; answer %d %.300s", err, r.StatusCode, r.Body)
		}
		defer f.Close()
		rs, _ := f.GetRows(f.GetSheetName(0))
		return rs
	}
	r = staff.query(t, "photo-audit-alert", "/overdue/export", q)
	if m := rows(r); r.StatusCode != 200 || len(m) != 2 || m[1][0] != "Kiosk Audit Co" || m[1][1] != "张**" ||
		!strings.Contains(m[1][2], "***") || m[1][3] != thursday {
		t.Fatalf("masked export: %d %v", r.StatusCode, m)
	}
	if r := staff.query(t, "photo-audit-alert", "/overdue/export/full", q); r.StatusCode != 403 {
		t.Errorf("full export by the preset role: want 403, got %d", r.StatusCode)
	}
	r = privileged.query(t, "photo-audit-alert", "/overdue/export/full", q)
	if m := rows(r); r.StatusCode != 200 || len(m) != 2 || m[1][1] != "张三丰" || strings.Contains(m[1][2], "*") || len(m[1][2]) != 18 {
		t.Fatalf("full export: %d %v", r.StatusCode, m)
	}
	var exports int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('photo-audit.export.masked', 'photo-audit.export.full')`).Scan(&exports)
	if exports != 2 {
		t.Errorf("audit entries of exports: %d, want 2", exports)
	}

	// 9. The calendar is data: Tuesday Dec 8 made a holiday → on Wednesday only Friday and
	//    Monday have passed; removed → overdue again. Only a caller granted it may change it.
	if r := staff.do(t, "photo-audit-alert", "PUT", "/calendar/2026-12-08", jsonH, map[string]string{"kind": "holiday", "name": "test"}); r.StatusCode != 403 {
		t.Errorf("calendar change by the preset role: want 403, got %d", r.StatusCode)
	}
	if r := privileged.do(t, "photo-audit-alert", "PUT", "/calendar/2026-12-08", jsonH, map[string]string{"kind": "holiday", "name": "test"}); r.StatusCode != 200 {
		t.Fatalf("calendar set: %d %s", r.StatusCode, r.Body)
	}
	if r := privileged.do(t, "photo-audit-alert", "PUT", "/calendar/2026-12-08", jsonH, map[string]string{"kind": "workday"}); r.StatusCode != 400 {
		t.Errorf("make-up day on a Tuesday: want 400, got %d %s", r.StatusCode, r.Body)
	}
	r = staff.query(t, "photo-audit-alert", "/overdue", q)
	if _ = json.Unmarshal(r.Body, &rep); rep.Total != 0 {
		t.Errorf("with Dec 8 a holiday: %s", r.Body)
	}
	if r := privileged.do(t, "photo-audit-alert", "DELETE", "/calendar/2026-12-08", nil, nil); r.StatusCode != 204 {
		t.Fatalf("calendar remove: %d %s", r.StatusCode, r.Body)
	}
	r = staff.query(t, "photo-audit-alert", "/overdue", q)
	if _ = json.Unmarshal(r.Body, &rep); rep.Total != 1 {
		t.Errorf("holiday removed: %s", r.Body)
	}
	r = staff.query(t, "photo-audit-alert", "/calendar", url.Values{"year": {"2026"}})
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), `"2026-10-10","kind":"workday"`) {
		t.Errorf("calendar read: %d %s", r.StatusCode, r.Body)
	}
}
