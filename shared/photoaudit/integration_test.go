//go:build integration

package photoaudit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/shared/inbox"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/photoaudit"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/workday"
	"github.com/sscard/platform/tests/testenv"
)

var ctx = context.Background()

type fixture struct {
	svc  *photoaudit.Service
	pool *pgxpool.Pool
}

func newFixture(t *testing.T, environ ...string) *fixture {
	t.Helper()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	cfg, err := photoaudit.LoadConfig(envconf.New(environ))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := pii.FromSecrets(env.Secrets, pii.PGStore{DB: pool})
	if err != nil {
		t.Fatal(err)
	}
	al, err := audit.FromSecrets(env.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, svc: &photoaudit.Service{Pool: pool, People: person.NewStore(pool, kr), Audit: al,
		Config: cfg, Log: testLogger(t)}}
}

// applicant registers a person and an application for them (the rows card-apply writes;
// only what the export joins matters here).
func (f *fixture) applicant(t *testing.T, name string) (appID, idNumber string) {
	t.Helper()
	body := fmt.Sprintf("110105%s%03d", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(20000)).Format("20060102"), rand.IntN(1000))
	c, _ := identity.CheckChar(body)
	idNumber = body + string(c)
	pid, err := f.svc.People.Register(ctx, idNumber, name, "")
	if err != nil {
		t.Fatal(err)
	}
	appID = fmt.Sprintf("app-%d", rand.Int64())
	if _, err := f.pool.Exec(ctx, `INSERT INTO applications (application_id, person_id, channel, id_kind, details_enc, status, status_since)
		VALUES ($1, $2, 'h5', 'resident', 'x', 'photo_pending_audit', now())`, appID, pid); err != nil {
		t.Fatal(err)
	}
	return appID, idNumber
}

func (f *fixture) deliver(t *testing.T, ev event.Event, fn func(context.Context, pgx.Tx, event.Event) error) inbox.Outcome {
	t.Helper()
	out, err := inbox.Process(ctx, f.pool, "photo-audit-alert", ev, func(ctx context.Context, tx pgx.Tx) error { return fn(ctx, tx, ev) })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func submitted(t *testing.T, app string, ch events.Channel, at time.Time) event.Event {
	t.Helper()
	ev, err := events.New(events.PhotoSubmitted, "/functions/card-apply", app, events.PhotoSubmittedData{ApplicationID: app,
		PhotoObject: "photos/" + app + ".jpg", Channel: ch, SubmittedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func audited(t *testing.T, app string, at time.Time) event.Event {
	t.Helper()
	ev, err := events.New(events.PhotoAudited, "/functions/card-apply", app, events.PhotoAuditedData{ApplicationID: app,
		Result: events.AuditApproved, Auditor: "op-1", AuditedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (f *fixture) pending(t *testing.T, app string) bool {
	t.Helper()
	var p bool
	if err := f.pool.QueryRow(ctx, `SELECT audited_at IS NULL FROM photo_audit_clock WHERE application_id = $1`, app).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func china(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, events.ChinaTime)
}

// The clock starts and stops once per event, whatever the order of delivery.
func TestClock_StartStopReorderAndRedelivery(t *testing.T) {
	f := newFixture(t)
	a, _ := f.applicant(t, "王小明")
	sub := submitted(t, a, events.ChannelH5, china(2026, 12, 3, 10, 0))
	if f.deliver(t, sub, f.svc.OnPhotoSubmitted) != inbox.Processed || f.deliver(t, sub, f.svc.OnPhotoSubmitted) != inbox.Duplicate {
		t.Fatal("redelivered PhotoSubmitted must be a duplicate")
	}
	if !f.pending(t, a) {
		t.Fatal("submitted photo must be pending")
	}
	f.deliver(t, audited(t, a, china(2026, 12, 3, 11, 0)), f.svc.OnPhotoAudited)
	if f.pending(t, a) {
		t.Fatal("audited photo must not be pending")
	}
	// A new photo after a rejection restarts the clock; the late audit of the old one does not stop it.
	f.deliver(t, submitted(t, a, events.ChannelH5, china(2026, 12, 4, 9, 0)), f.svc.OnPhotoSubmitted)
	f.deliver(t, audited(t, a, china(2026, 12, 3, 12, 0)), f.svc.OnPhotoAudited)
	if !f.pending(t, a) {
		t.Fatal("re-submitted photo must be pending despite a late audit of the earlier one")
	}
	// An old submission delivered late changes nothing.
	f.deliver(t, submitted(t, a, events.ChannelH5, china(2026, 12, 1, 9, 0)), f.svc.OnPhotoSubmitted)
	var at time.Time
	_ = f.pool.QueryRow(ctx, `SELECT submitted_at FROM photo_audit_clock WHERE application_id = $1`, a).Scan(&at)
	if !at.Equal(china(2026, 12, 4, 9, 0)) {
		t.Fatalf("submitted_at %s, want the newest submission", at)
	}
	// Audit first, submission later (broker reordering): stays stopped.
	b, _ := f.applicant(t, "李四")
	f.deliver(t, audited(t, b, china(2026, 12, 3, 15, 0)), f.svc.OnPhotoAudited)
	f.deliver(t, submitted(t, b, events.ChannelKiosk, china(2026, 12, 3, 14, 0)), f.svc.OnPhotoSubmitted)
	var provider string
	_ = f.pool.QueryRow(ctx, `SELECT provider FROM photo_audit_clock WHERE application_id = $1`, b).Scan(&provider)
	if f.pending(t, b) || provider != "third-party-audit" {
		t.Fatalf("audit before submission: pending %v provider %q", f.pending(t, b), provider)
	}
}

// Thursday 23:30 China time is overdue on Wednesday, not Tuesday; Friday 00:00 on Thursday.
// The run sends one SMSRequested on the first day, none on a rerun or a day off.
func TestRun_OverdueDayRerunAndConcurrency(t *testing.T) {
	f := newFixture(t, "photo_audit_providers=kiosk=Kiosk Audit Co,outlet=Outlet Audit Co")
	thu, _ := f.applicant(t, "张三丰")
	fri, _ := f.applicant(t, "欧阳娜娜")
	done, _ := f.applicant(t, "赵六")
	f.deliver(t, submitted(t, thu, events.ChannelKiosk, time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC)), f.svc.OnPhotoSubmitted)
	f.deliver(t, submitted(t, fri, events.ChannelOutlet, time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)), f.svc.OnPhotoSubmitted)
	f.deliver(t, submitted(t, done, events.ChannelKiosk, china(2026, 12, 1, 9, 0)), f.svc.OnPhotoSubmitted)
	f.deliver(t, audited(t, done, china(2026, 12, 2, 9, 0)), f.svc.OnPhotoAudited)

	run := func(at time.Time) photoaudit.RunResult {
		t.Helper()
		r, err := f.svc.Run(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := run(china(2026, 12, 8, 9, 0)); r.Outcome != "none-overdue" || r.Overdue != 0 {
		t.Errorf("Tuesday: %+v, want none overdue", r)
	}
	r := run(china(2026, 12, 9, 9, 0))
	if r.Outcome != "sent" || r.Overdue != 1 || r.MessageID != "photo-audit-overdue-2026-12-09" {
		t.Fatalf("Wednesday: %+v, want one overdue, sent", r)
	}
	if r := run(china(2026, 12, 9, 17, 0)); r.Outcome != "already-ran" || r.MessageID != "photo-audit-overdue-2026-12-09" {
		t.Errorf("Wednesday rerun: %+v", r)
	}
	if r := run(china(2026, 12, 12, 9, 0)); r.Outcome != "non-working-day" {
		t.Errorf("Saturday: %+v", r)
	}
	// Thursday: four concurrent runs, one message.
	var wg sync.WaitGroup
	outcomes := make([]string, 4)
	for i := range outcomes {
		wg.Add(1)
		go func() { defer wg.Done(); outcomes[i] = run(china(2026, 12, 10, 9, 0)).Outcome }()
	}
	wg.Wait()
	if strings.Count(strings.Join(outcomes, ","), "sent") != 1 || strings.Count(strings.Join(outcomes, ","), "already-ran") != 3 {
		t.Errorf("concurrent Thursday runs: %v, want exactly one sent", outcomes)
	}

	rows, err := f.pool.Query(ctx, `SELECT event_id, event FROM outbox WHERE producer = 'photo-audit-alert' AND event_type = $1 ORDER BY event_id`,
		string(events.SMSRequested))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		d, err := events.Decode[events.SMSRequestedData](ev)
		if err != nil {
			t.Fatal(err)
		}
		if d.MessageID != id || d.Template != "photo_audit_overdue" || d.RecipientRef != "group:photo-audit-managers" || d.Purpose != events.PurposeAlert {
			t.Errorf("alert %s: %+v", id, d)
		}
		got = append(got, id+"="+d.Params["count"])
	}
	if strings.Join(got, " ") != "photo-audit-overdue-2026-12-09=1 photo-audit-overdue-2026-12-10=2" {
		t.Errorf("outbox alerts: %v", got)
	}

	// Query: per provider and total; a larger threshold; one provider.
	q := func(asOf string, n int, provider string) photoaudit.Report {
		t.Helper()
		d, _ := workday.ParseDate(asOf)
		rep, err := f.svc.Overdue(ctx, photoaudit.Query{AsOf: d, Threshold: n, Provider: provider})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := q("2026-12-10", 3, ""); rep.Total != 2 || fmt.Sprint(rep.Providers) != "[{Kiosk Audit Co 1} {Outlet Audit Co 1} {third-party-audit 0}]" {
		t.Errorf("Thursday, 3 days: %+v", rep)
	}
	// Thursday's photo has waited Fri, Mon, Tue, Wed: overdue at 4, not at 5.
	if rep := q("2026-12-10", 4, ""); rep.Total != 1 {
		t.Errorf("Thursday, 4 days: %+v", rep)
	}
	if rep := q("2026-12-10", 5, ""); rep.Total != 0 {
		t.Errorf("Thursday, 5 days: %+v", rep)
	}
	if rep := q("2026-12-10", 3, "Kiosk Audit Co"); rep.Total != 1 || len(rep.Providers) != 1 {
		t.Errorf("one provider: %+v", rep)
	}
	// The calendar is data: make Tuesday Dec 8 a holiday and Thursday's photo is not overdue on Wednesday.
	admin := photoaudit.Actor{ID: "staff-admin", RequestID: "req-cal-1"}
	tue := workday.NewDate(2026, 12, 8)
	if err := f.svc.SetDay(ctx, workday.Day{Date: tue, Kind: workday.Holiday, Name: "test"}, admin); err != nil {
		t.Fatal(err)
	}
	if rep := q("2026-12-09", 3, ""); rep.Total != 0 {
		t.Errorf("with Dec 8 a holiday: %+v", rep)
	}
	if err := f.svc.SetDay(ctx, workday.Day{Date: tue, Kind: workday.MakeUp}, admin); err == nil {
		t.Error("a make-up working day on a Tuesday must be refused")
	}
	if err := f.svc.RemoveDay(ctx, tue, admin); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RemoveDay(ctx, tue, admin); err != photoaudit.ErrNotFound {
		t.Errorf("second removal: %v", err)
	}
	if rep := q("2026-12-09", 3, ""); rep.Total != 1 {
		t.Errorf("holiday removed: %+v", rep)
	}

	// Export: masked, then full; both audited.
	d10 := workday.NewDate(2026, 12, 10)
	staff := photoaudit.Actor{ID: "staff-report", RequestID: "req-exp-1"}
	masked, err := f.svc.Export(ctx, photoaudit.Query{AsOf: d10, Threshold: 3}, false, staff)
	if err != nil {
		t.Fatal(err)
	}
	full, err := f.svc.Export(ctx, photoaudit.Query{AsOf: d10, Threshold: 3}, true, staff)
	if err != nil {
		t.Fatal(err)
	}
	mRows, fRows := sheet(t, masked.XLSX), sheet(t, full.XLSX)
	if len(mRows) != 3 || len(fRows) != 3 || mRows[1][0] != "Kiosk Audit Co" || mRows[1][1] != "张**" ||
		!strings.Contains(mRows[1][2], "*") || fRows[1][1] != "张三丰" || strings.Contains(fRows[1][2], "*") || fRows[2][1] != "欧阳娜娜" {
		t.Errorf("export rows:\nmasked %v\nfull %v", mRows, fRows)
	}
	var n int
	_ = f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('photo-audit.export.masked', 'photo-audit.export.full')
		AND actor = 'staff-report'`).Scan(&n)
	if n != 2 {
		t.Errorf("audit entries for the exports: %d, want 2", n)
	}
	_ = f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action LIKE 'workday.calendar.%'`).Scan(&n)
	if n != 2 {
		t.Errorf("audit entries for calendar changes: %d, want 2", n)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func sheet(t *testing.T, b []byte) [][]string {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
