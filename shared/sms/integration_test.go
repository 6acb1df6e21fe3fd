//go:build integration

package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/cmpp"
	"github.com/sscard/platform/shared/sms/gateway"
	"github.com/sscard/platform/shared/sms/link"
	"github.com/sscard/platform/tests/testenv"
)

type rig struct {
	pool    *pgxpool.Pool
	rdb     *redis.Client
	svc     *sms.Service
	disp    *sms.Dispatcher
	sim     *smssim.Sim
	persons *person.Store
	gw      *gateway.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	kr, err := pii.FromSecrets(env.Secrets, pii.PGStore{DB: pool})
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := sms.NewRoutes(nil, nil)
	r := &rig{pool: pool, persons: person.NewStore(pool, kr)}
	r.svc = &sms.Service{Pool: pool, Protect: kr, Persons: r.persons, Routes: routes}
	r.rdb = redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(t, "redis-password")})
	t.Cleanup(func() { r.rdb.Close() })
	r.sim, err = smssim.StartCMPP("127.0.0.1:0", map[string]string{"901234": "sim-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Close() })
	r.disp = &sms.Dispatcher{Service: r.svc, ReportMatch: 3 * time.Second}
	c := link.New(&cmpp.Client{Account: "901234", Secret: "sim-secret", SrcID: "10657001"},
		link.Config{Addr: r.sim.Addr(), Backoff: 5 * time.Millisecond, OnReport: func(rep link.Report) error {
			return r.disp.OnReport(context.Background(), sms.ChannelMobile, sms.Report{MsgID: rep.MsgID, Stat: rep.Stat,
				Delivered: rep.Delivered, At: rep.At})
		}})
	r.gw = gateway.NewClient(events.CarrierCMPP, c)
	t.Cleanup(func() { c.Close() })
	// One simulated ISMG serves every channel here (the number-prefix routing is unit-tested).
	r.disp.Gateways = map[string]sms.Gateway{sms.ChannelMobile: r.gw, sms.ChannelFallback: r.gw}
	return r
}

func (r *rig) consume(t *testing.T, typ events.Type, data any) error {
	t.Helper()
	src := map[events.Type]string{events.SMSRequested: "/functions/card-apply", events.DiscrepancyFound: "/functions/reconcile"}[typ]
	ev, err := events.New(typ, src, "s", data)
	if err != nil {
		t.Fatal(err)
	}
	return pgx.BeginFunc(context.Background(), r.pool, func(tx pgx.Tx) error { return r.svc.Consume(context.Background(), tx, ev) })
}

func (r *rig) status(t *testing.T, messageID string) []sms.Record {
	t.Helper()
	recs, err := r.svc.ByMessage(context.Background(), messageID)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestSMS_PersonNoticeThroughCMPPWithDeliveryReportAndEvent(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pid, err := r.persons.Register(ctx, "11010519491231002X", "张三", "13800138000")
	if err != nil {
		t.Fatal(err)
	}
	req := events.SMSRequestedData{MessageID: "app-1:mailed", Template: "card.application.mailed",
		Params: map[string]string{"carrier": "EMS", "waybillNo": "EA123456789CN"}, RecipientRef: pid, Purpose: events.PurposeNotice}
	if err := r.consume(t, events.SMSRequested, req); err != nil {
		t.Fatal(err)
	}
	// The same message id again (a producer retry under a new event id): nothing new.
	if err := r.consume(t, events.SMSRequested, req); err != nil {
		t.Fatal(err)
	}
	recs := r.status(t, "app-1:mailed")
	if len(recs) != 1 || recs[0].Status != sms.StatusQueued || recs[0].Phone != "138****8000" || recs[0].Channel != sms.ChannelMobile {
		t.Fatalf("queued: %+v", recs)
	}
	// Nothing in clear at rest.
	var phoneEnc, textEnc string
	_ = r.pool.QueryRow(ctx, `SELECT phone_enc, text_enc FROM sms_messages WHERE id = $1`, recs[0].ID).Scan(&phoneEnc, &textEnc)
	if strings.Contains(phoneEnc, "13800138000") || strings.Contains(textEnc, "EA123456789CN") {
		t.Fatal("phone or text stored in clear")
	}
	if n, err := r.disp.Once(ctx); err != nil || n != 1 {
		t.Fatalf("dispatch: %d %v", n, err)
	}
	got := r.sim.Received()
	if len(got) != 1 || got[0].Dest != "13800138000" || got[0].Text != "您的社保卡已由EMS寄出，运单号EA123456789CN，请注意查收。" {
		t.Fatalf("simulator received %+v", got)
	}
	testenv.Eventually(t, 5*time.Second, "delivery report applied", func() bool {
		return r.status(t, "app-1:mailed")[0].Status == sms.StatusDelivered
	})
	// Sent once only: a second pass finds nothing queued.
	if n, _ := r.disp.Once(ctx); n != 0 || len(r.sim.Received()) != 1 {
		t.Fatalf("second pass sent again: %d", n)
	}
	var evJSON []byte
	if err := r.pool.QueryRow(ctx, `SELECT event FROM outbox WHERE producer = 'sms-alert' AND event_type = $1`,
		string(events.SMSDelivered)).Scan(&evJSON); err != nil {
		t.Fatal(err)
	}
	var ev struct{ Data events.SMSDeliveredData }
	_ = json.Unmarshal(evJSON, &ev)
	if ev.Data.MessageID != "app-1:mailed" || ev.Data.Status != events.SMSStatusDelivered || ev.Data.Carrier != events.CarrierCMPP {
		t.Fatalf("SMSDelivered: %s", evJSON)
	}
	rep, err := r.svc.DailyReport(ctx, time.Now().In(sms.ChinaTime).Format(time.DateOnly))
	if err != nil || rep.Total != 1 || rep.Rows[0].Carrier != "cmpp" || rep.Rows[0].Status != "delivered" ||
		rep.Rows[0].Template != "card.application.mailed" {
		t.Fatalf("daily report: %+v %v", rep, err)
	}
}

func TestSMS_GroupAlertOnePerMemberOnceEver(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for i, phone := range []string{"13900000001", "+86 139-0000-0002", "18600000003"} {
		if _, err := r.svc.PutMember(ctx, "photo-audit-managers", fmt.Sprintf("mgr-%d", i), phone); err != nil {
			t.Fatal(err)
		}
	}
	req := events.SMSRequestedData{MessageID: "photo-audit-overdue:2026-12-03", Template: "photo_audit_overdue",
		Params: map[string]string{"count": "7"}, RecipientRef: "group:photo-audit-managers", Purpose: events.PurposeAlert}
	for range 2 { // a rerun on the same day
		if err := r.consume(t, events.SMSRequested, req); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.disp.Once(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.sim.Received()
	if len(got) != 3 {
		t.Fatalf("want 3 SMS, got %+v", got)
	}
	for _, m := range got {
		if m.Text != "有7张社保卡照片审核超期，请尽快审核。" {
			t.Fatalf("text %q", m.Text)
		}
	}
	gs, _ := r.svc.Groups(ctx)
	for _, g := range gs {
		if g.Name == "photo-audit-managers" && (len(g.Members) != 3 || g.Members[1].Phone != "139****0002") {
			t.Fatalf("members: %+v", g.Members)
		}
	}
	// An unknown group or template is refused for good (422), not retried.
	bad := req
	bad.RecipientRef, bad.MessageID = "group:nobody", "x"
	var p *problem.Problem
	if err := r.consume(t, events.SMSRequested, bad); !errors.As(err, &p) || p.Status != 422 {
		t.Fatalf("unknown group: %v", err)
	}
}

func TestSMS_LongMessageThrottlingAndDrop(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.PublishTemplate(ctx, "long.notice", strings.Repeat("社会保障卡服务通知。", 10)+"{n}", "test"); err != nil {
		t.Fatal(err)
	}
	r.sim.Throttle(3)
	r.sim.DropAfter(5)
	const n = 12
	for i := range n {
		if _, err := r.svc.PutMember(ctx, "kiosk-maintainers", fmt.Sprintf("m%02d", i), fmt.Sprintf("1380000%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.consume(t, events.SMSRequested, events.SMSRequestedData{MessageID: "long-1", Template: "long.notice",
		Params: map[string]string{"n": "!"}, RecipientRef: "group:kiosk-maintainers", Purpose: events.PurposeAlert}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.disp.Once(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.sim.Received()
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Dest]++
		if m.Parts != 2 || !strings.HasSuffix(m.Text, "。!") {
			t.Fatalf("long message: %+v", m)
		}
	}
	if len(seen) != n || len(got) != n {
		t.Fatalf("want %d distinct messages once each, got %d (%v)", n, len(got), seen)
	}
	for _, rec := range r.status(t, "long-1") {
		if rec.Status == sms.StatusQueued || rec.Status == sms.StatusFailed || rec.Parts != 2 {
			t.Fatalf("record %+v", rec)
		}
	}
	if r.gw.Link.Stats.Throttled.Load() != 3 || r.sim.Logins.Load() != 2 {
		t.Fatalf("throttled %d, logins %d", r.gw.Link.Stats.Throttled.Load(), r.sim.Logins.Load())
	}
}

func TestSMS_FailedReportAndConsumedEvents(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pid, _ := r.persons.Register(ctx, "110105194912310029", "李四", "13700137000")
	r.sim.FailNumber("13700137000")
	if _, err := r.svc.PutMember(ctx, "finance-staff", "fin-1", "13500000000"); err != nil {
		t.Fatal(err)
	}
	if err := r.consume(t, events.DiscrepancyFound, events.DiscrepancyFoundData{RunID: "run-9", BusinessDate: "2026-12-03",
		Kind: events.DiscrepancyShort, AmountFen: 12345, TxnRef: "T0001"}); err != nil {
		t.Fatal(err)
	}
	if err := r.consume(t, events.SMSRequested, events.SMSRequestedData{MessageID: "c1", Template: "card.status.changed",
		RecipientRef: pid, Purpose: events.PurposeNotice}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.disp.Once(ctx); err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, m := range r.sim.Received() {
		texts[m.Dest] = m.Text
	}
	if texts["13500000000"] != "2026-12-03对账发现差错（短款），金额123.45元，流水号T0001，请及时处理。" {
		t.Fatalf("discrepancy text: %q", texts["13500000000"])
	}
	testenv.Eventually(t, 5*time.Second, "failed report applied", func() bool {
		rec := r.status(t, "c1")
		return len(rec) == 1 && rec[0].Status == sms.StatusFailed && strings.Contains(rec[0].Error, "UNDELIV")
	})
}

func TestSMS_VerificationCodesLimitsAndAttempts(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var sent []string
	codes := &sms.Codes{Redis: r.rdb, Service: r.svc, Limits: sms.CodeLimits{Interval: 1500 * time.Millisecond, PerDay: 3,
		TTL: time.Minute, MaxAttempts: 3, Digits: 6}}
	phone := fmt.Sprintf("1391%07d", time.Now().UnixNano()%10_000_000) // fresh limits per run
	client := "h5/" + phone
	codeOf := func() string {
		if _, err := r.disp.Once(ctx); err != nil {
			t.Fatal(err)
		}
		got := r.sim.Received()
		m := got[len(got)-1]
		sent = append(sent, m.Text)
		return strings.TrimPrefix(strings.SplitN(m.Text, "，", 2)[0], "您的验证码为")
	}
	if _, err := codes.Issue(ctx, sms.CodeRequest{Phone: phone, Purpose: "change-phone", Client: client}); err != nil {
		t.Fatal(err)
	}
	code := codeOf()
	var p *problem.Problem
	if _, err := codes.Issue(ctx, sms.CodeRequest{Phone: phone, Purpose: "change-phone", Client: client}); !errors.As(err, &p) || p.Status != 429 {
		t.Fatalf("second code within the interval: %v", err)
	}
	if err := codes.Verify(ctx, phone, "change-phone", "000000x"); !errors.Is(err, sms.ErrCodeWrong) {
		t.Fatalf("wrong code: %v", err)
	}
	if err := codes.Verify(ctx, phone, "change-phone", code); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := codes.Verify(ctx, phone, "change-phone", code); !errors.Is(err, sms.ErrCodeExpired) {
		t.Fatalf("used code again: %v", err)
	}
	// Attempts: three wrong tries void the code.
	time.Sleep(1600 * time.Millisecond)
	if _, err := codes.Issue(ctx, sms.CodeRequest{Phone: phone, Purpose: "change-phone", Client: client}); err != nil {
		t.Fatal(err)
	}
	code = codeOf()
	_ = codes.Verify(ctx, phone, "change-phone", "1")
	_ = codes.Verify(ctx, phone, "change-phone", "2")
	if err := codes.Verify(ctx, phone, "change-phone", "3"); !errors.Is(err, sms.ErrCodeLocked) {
		t.Fatalf("third wrong try: %v", err)
	}
	if err := codes.Verify(ctx, phone, "change-phone", code); !errors.Is(err, sms.ErrCodeExpired) {
		t.Fatalf("right code after lock: %v", err)
	}
	// Day limit: the third code is the last of the day.
	time.Sleep(1600 * time.Millisecond)
	if _, err := codes.Issue(ctx, sms.CodeRequest{Phone: phone, Purpose: "change-phone", Client: client}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1600 * time.Millisecond)
	if _, err := codes.Issue(ctx, sms.CodeRequest{Phone: phone, Purpose: "change-phone", Client: client}); !errors.As(err, &p) || p.Status != 429 {
		t.Fatalf("fourth code of the day: %v", err)
	}
	// The code is not in Redis in clear, nor in Postgres.
	keys, _ := r.rdb.Keys(ctx, "sms:code:*").Result()
	for _, k := range keys {
		v, _ := r.rdb.HGetAll(ctx, k).Result()
		if strings.Contains(k, phone) || v["hash"] == code {
			t.Fatal("code or phone in clear in Redis")
		}
	}
	if len(sent) != 2 {
		t.Fatalf("sent %v", sent)
	}
}

// A submitted SMS whose report never comes expires after the report wait, announced as expired.
func TestSMS_NoReportExpires(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.sim.Reports(false)
	pid, _ := r.persons.Register(ctx, "110105194912310037", "赵六", "13600136000")
	if err := r.consume(t, events.SMSRequested, events.SMSRequestedData{MessageID: "exp-1", Template: "card.application.delivered",
		RecipientRef: pid, Purpose: events.PurposeNotice}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.disp.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if s := r.status(t, "exp-1")[0].Status; s != sms.StatusSubmitted {
		t.Fatalf("after submit: %s", s)
	}
	r.disp.ReportWait = time.Millisecond
	time.Sleep(10 * time.Millisecond)
	if err := r.disp.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := r.status(t, "exp-1")[0]; rec.Status != sms.StatusExpired || rec.DoneAt == nil {
		t.Fatalf("after the wait: %+v", rec)
	}
	var n int
	_ = r.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_type = $1 AND event->'data'->>'status' = 'expired'`,
		string(events.SMSDelivered)).Scan(&n)
	if n != 1 {
		t.Fatalf("SMSDelivered expired events: %d", n)
	}
}
