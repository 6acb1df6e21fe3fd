//go:build integration

package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/reconcile"
	"github.com/sscard/platform/tests/testenv"
)

func s3Client(t *testing.T, env *testenv.Env) *s3.Client {
	t.Helper()
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.Vars["s3_endpoint"]), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(env.Secret(t, "s3-access-key"), env.Secret(t, "s3-secret-key"), "")})
	for _, b := range []string{reconcile.StatementBucket, reconcile.ReportBucket} {
		_, _ = c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)})
	}
	return c
}

// reconDay is one business date's inputs: ledger rows, the WeChat Pay bill, the HIS export.
type reconDay struct {
	date    time.Time
	ledger  []reconcile.StatementRow // Status: the ledger's
	channel []reconcile.StatementRow
	his     []reconcile.StatementRow
}

// seed writes the day's ledger to Postgres and its files to the statements bucket. Each
// test uses a date prefix of its own in the shared MinIO: dates are distinct per test.
func (d *reconDay) seed(t *testing.T, pool *pgxpool.Pool, c *s3.Client) {
	t.Helper()
	ctx := context.Background()
	for _, r := range d.ledger {
		if _, err := pool.Exec(ctx, `INSERT INTO payment_ledger (channel, txn_no, merchant_id, kind, amount_fen, status, paid_at, biz_date)
			VALUES ('wechat', $1, $2, $3, $4, $5, $6, $7)`, r.Key, r.Merchant, r.Kind.String(), r.AmountFen, r.Status.String(), r.Time,
			d.date.Format(time.DateOnly)); err != nil {
			t.Fatal(err)
		}
	}
	date := d.date.Format(time.DateOnly)
	put := func(key string, body []byte) {
		sum := sha256.Sum256(body)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(reconcile.StatementBucket), Key: aws.String(key),
			Body: bytes.NewReader(body), Metadata: map[string]string{"sha256": hex.EncodeToString(sum[:])}}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := reconcile.WriteWeChat(&b, d.channel, true); err != nil {
		t.Fatal(err)
	}
	put("wechat/"+date+"/tradebill.csv", b.Bytes())
	if d.his != nil {
		b.Reset()
		if err := reconcile.WriteHIS(&b, "dg-clinic-01", "wechat", d.date, d.his); err != nil {
			t.Fatal(err)
		}
		put("his/"+date+"/dg-clinic-01.csv", b.Bytes())
	}
}

func pay(key string, fen int64, at time.Time) reconcile.StatementRow {
	return reconcile.StatementRow{Key: key, Merchant: "1900000109", Kind: reconcile.KindPay, Status: reconcile.StatusSuccess,
		AmountFen: fen, Time: at, Name: "门诊缴费"}
}

// standardDay: on date d, one of each class. P9 is paid at 23:55 and the channel lists it
// the next day (pending, then matched across days).
func standardDay(d time.Time) *reconDay {
	at := d.Add(10 * time.Hour)
	day := &reconDay{date: d}
	for i := 1; i <= 8; i++ {
		day.ledger = append(day.ledger, pay(fmt.Sprintf("P%d", i), int64(1000*i), at))
	}
	day.ledger[7].Status = reconcile.StatusClosed // P8: closed on our side
	day.ledger = append(day.ledger, pay("P9", 9000, d.Add(23*time.Hour+55*time.Minute)))
	for _, k := range []int{1, 2, 3, 4, 5, 7, 8} { // P6 never reaches the channel
		r := pay(fmt.Sprintf("P%d", k), int64(1000*k), at.Add(time.Second))
		if k == 7 {
			r.AmountFen++ // amount mismatch
		}
		day.channel = append(day.channel, r)
	}
	day.channel = append(day.channel, pay("P3", 3000, at.Add(time.Second)), pay("L1", 777, at)) // duplicate, long
	for _, k := range []int{1, 2, 3, 5, 6, 7, 8} {                                              // the HIS never settled P4
		day.his = append(day.his, pay(fmt.Sprintf("P%d", k), int64(1000*k), at))
	}
	day.his = append(day.his, pay("P10", 500, at)) // settled by the HIS only
	return day
}

// wantStandard: class:key of every listed row of standardDay (pending included).
var wantStandard = []string{"long:L1", "short:P6", "amount-mismatch:P7", "status-mismatch:P8", "duplicate:P3",
	"pending:P9", "his-missing:L1", "his-missing:P4", "his-extra:P10"}

type discView struct {
	Class, TxnKey, Side string
	ChannelFen          int64
}

func classKeys(ds []discView) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Class+":"+d.TxnKey)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestReconcile_ThreeTriggersRerunsRefundsAndTheNextDay(t *testing.T) {
	p := startPlatform(t)
	pool := p.env.Pool(t, p.dsn)
	ctx := context.Background()
	c := s3Client(t, p.env)
	staff := p.register(t, "staff-fin-01", channelauth.KindStaff, nil)
	bank := p.register(t, "bank-recon-01", channelauth.KindBank, nil)

	// The schedule reconciles yesterday (China time): that is the day seeded here, with
	// a unique statement prefix per test run because MinIO is shared.
	yesterday := time.Now().In(reconcile.China).AddDate(0, 0, -1)
	d := time.Date(yesterday.Year(), yesterday.Month(), yesterday.Day(), 0, 0, 0, 0, reconcile.China)
	date := d.Format(time.DateOnly)
	cleanPrefix(t, c, "wechat/"+date+"/")
	cleanPrefix(t, c, "his/"+date+"/")
	day := standardDay(d)
	day.seed(t, pool, c)

	discrepancies := func(run string) []discView {
		t.Helper()
		resp := sdo(t, staff, "GET", "/discrepancies?run="+run+"&pageSize=500", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("discrepancies: %d %s", resp.StatusCode, resp.Body)
		}
		var page struct {
			Items []discView
			Total int
		}
		_ = json.Unmarshal(resp.Body, &page)
		return page.Items
	}
	type runView struct {
		RunID, Status string
		Current       bool
		Counts        map[string]int
		Discrepancies int
		ControlsOK    bool
	}
	outboxCount := func(typ string) int {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE producer = 'reconcile' AND event_type = $1`, typ).Scan(&n)
		return n
	}

	// Unsigned, or signed by a caller that is not staff: refused.
	if resp, body := p.do(t, "GET", "/function/reconcile/runs", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("unsigned: want 401, got %d %s", resp.StatusCode, body)
	}
	if resp := sdo(t, bank, "GET", "/runs", nil, nil); resp.StatusCode != 403 {
		t.Fatalf("bank caller: want 403, got %d %s", resp.StatusCode, resp.Body)
	}

	// 1. A signed manual call.
	resp := sdo(t, staff, "POST", "/runs", nil, map[string]string{"channel": "wechat", "date": date})
	if resp.StatusCode != 201 {
		t.Fatalf("manual run: %d %s", resp.StatusCode, resp.Body)
	}
	var run1 runView
	_ = json.Unmarshal(resp.Body, &run1)
	if run1.Status != "succeeded" || !run1.Current || run1.Counts["matched"] != 5 || run1.Discrepancies != 8 || !run1.ControlsOK {
		t.Fatalf("run 1: %s", resp.Body)
	}
	got1 := discrepancies(run1.RunID)
	if !sameSet(classKeys(got1), wantStandard) {
		t.Fatalf("run 1 discrepancies: want %v, got %v", wantStandard, classKeys(got1))
	}
	notices := outboxCount("cn.sscard.reconcile.discrepancy.found.v1")
	if notices != 8 {
		t.Errorf("want one DiscrepancyFound per discrepancy (8), got %d", notices)
	}

	// 2. cron-connector's empty POST; 3. a Knative PingSource event. Both rerun the date.
	resp2, body := p.do(t, "POST", "/function/reconcile", http.Header{"X-Connector": {"cron-connector"}}, nil)
	if resp2.StatusCode != 200 || !strings.Contains(string(body), `"trigger":"schedule"`) {
		t.Fatalf("cron trigger: %d %s", resp2.StatusCode, body)
	}
	ping := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"ping-1"}, "Ce-Source": {"/apis/v1/namespaces/sscard/pingsources/reconcile"},
		"Ce-Type": {"dev.knative.sources.ping"}, "Content-Type": {"application/json"}}
	resp3, body := p.do(t, "POST", "/function/reconcile", ping, []byte(`{}`))
	if resp3.StatusCode != 200 || !strings.Contains(string(body), `"trigger":"ping"`) {
		t.Fatalf("ping trigger: %d %s", resp3.StatusCode, body)
	}
	resp = sdo(t, staff, "GET", "/runs?channel=wechat&date="+date, nil, nil)
	var runs struct{ Items []runView }
	_ = json.Unmarshal(resp.Body, &runs)
	if len(runs.Items) != 3 || !runs.Items[0].Current || runs.Items[1].Status != "superseded" || runs.Items[2].Status != "superseded" {
		t.Fatalf("want 3 runs, the newest current and the others superseded: %s", resp.Body)
	}
	for _, r := range runs.Items[:2] {
		if got := discrepancies(r.RunID); !slices.Equal(classKeys(got), classKeys(got1)) {
			t.Errorf("rerun %s: want the same discrepancies in the same order, got %v", r.RunID, classKeys(got))
		}
	}
	// The channels with no statement that day are recorded as failed runs, not skipped silently.
	if !strings.Contains(string(body), "no statement file") {
		t.Errorf("schedule answer should name the channels without a statement: %s", body)
	}
	if n := outboxCount("cn.sscard.reconcile.discrepancy.found.v1"); n != notices {
		t.Errorf("reruns announced discrepancies again: %d events, want %d", n, notices)
	}
	if n := outboxCount("cn.sscard.reconcile.completed.v1"); n != 3 {
		t.Errorf("want one ReconciliationCompleted per run, got %d", n)
	}

	// Refunds: one per his-missing discrepancy, whatever the reruns.
	resp = sdo(t, staff, "GET", "/refunds?status=requested", nil, nil)
	var refunds struct {
		Items []struct{ RefundNo, TxnKey, Status string }
		Total int
	}
	_ = json.Unmarshal(resp.Body, &refunds)
	if refunds.Total != 2 {
		t.Fatalf("want 2 refunds (P4, L1), got %s", resp.Body)
	}
	var p4 string
	for _, r := range refunds.Items {
		if r.RefundNo != reconcile.RefundNo("wechat", r.TxnKey) {
			t.Errorf("refund number not derived from the discrepancy: %+v", r)
		}
		if r.TxnKey == "P4" {
			p4 = r.RefundNo
		}
	}
	resp = sdo(t, staff, "POST", "/refunds/"+p4+"/approve", nil, nil)
	var refund struct {
		Status, DecidedBy string
		ChannelAnswer     struct{ Status, ChannelRef string }
	}
	_ = json.Unmarshal(resp.Body, &refund)
	if resp.StatusCode != 200 || refund.Status != "succeeded" || refund.DecidedBy != "staff-fin-01" || refund.ChannelAnswer.Status != "SUCCESS" {
		t.Fatalf("approve: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := sdo(t, staff, "POST", "/refunds/"+p4+"/reject", nil, nil); resp.StatusCode != 409 {
		t.Errorf("reject after approval: want 409, got %d %s", resp.StatusCode, resp.Body)
	}
	var audited, simRefunds int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'reconcile.refund.approve' AND object_id = $1 AND actor = 'staff-fin-01'`,
		p4).Scan(&audited)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM recon_sim_channel_refunds WHERE refund_no = $1`, p4).Scan(&simRefunds)
	if audited != 1 || simRefunds != 1 {
		t.Errorf("want the approval audited once and one refund at the channel, got %d, %d", audited, simRefunds)
	}

	// Reports: the xlsx lists the discrepancies; the CSV too.
	resp = sdo(t, staff, "GET", "/runs/"+run1.RunID+"/report?format=xlsx", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	x, err := excelize.OpenReader(bytes.NewReader(resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := x.GetRows("差异明细")
	if len(rows) != 1+len(wantStandard) {
		t.Errorf("xlsx: want %d discrepancy rows, got %d", len(wantStandard), len(rows)-1)
	}
	resp = sdo(t, staff, "GET", "/runs/"+run1.RunID+"/report?format=csv", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(resp.Body), "his-missing") {
		t.Errorf("csv report: %d", resp.StatusCode)
	}
	resp = sdo(t, staff, "GET", "/discrepancies?class=nope", nil, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(resp.Body), "class") {
		t.Errorf("bad filter: want 400 naming class, got %d %s", resp.StatusCode, resp.Body)
	}

	// The next day: the channel lists P9; the pending row is carried over and matches.
	next := d.AddDate(0, 0, 1)
	cleanPrefix(t, c, "wechat/"+next.Format(time.DateOnly)+"/")
	day2 := &reconDay{date: next, ledger: []reconcile.StatementRow{pay("Q1", 100, next.Add(time.Hour))},
		channel: []reconcile.StatementRow{pay("Q1", 100, next.Add(time.Hour)), pay("P9", 9000, next.Add(time.Minute))}}
	day2.seed(t, pool, c)
	resp = sdo(t, staff, "POST", "/runs", nil, map[string]string{"channel": "wechat", "date": next.Format(time.DateOnly)})
	var run4 runView
	_ = json.Unmarshal(resp.Body, &run4)
	if resp.StatusCode != 201 || run4.Counts["matched"] != 1 || run4.Counts["matched-cross-day"] != 1 || run4.Discrepancies != 0 {
		t.Fatalf("next day: want Q1 matched and P9 matched across days, nothing else: %d %s", resp.StatusCode, resp.Body)
	}
}

// sdo is signer.do with the query string of path sent as the signed query.
func sdo(t *testing.T, s *signer, method, path string, h http.Header, body any) *callsign.Response {
	t.Helper()
	p, q, _ := strings.Cut(path, "?")
	query, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	r := callsign.Request{Method: method, Path: p, Query: query, Header: h}
	if body != nil {
		r.Body, _ = json.Marshal(body)
		r.ContentType = "application/json"
	}
	resp, err := s.client(t, "reconcile", false).Do(context.Background(), r)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, s.appID, err)
	}
	return resp
}

// cleanPrefix empties a statement prefix (MinIO is shared between test runs).
func cleanPrefix(t *testing.T, c *s3.Client, prefix string) {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(reconcile.StatementBucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		_, _ = c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(reconcile.StatementBucket), Key: o.Key})
	}
}

// The process running a reconciliation dies after it wrote its reports and before it
// published: the next run takes the lock, marks the dead run failed and completes with
// exactly the expected discrepancies and refunds.
func TestReconcile_KilledMidRunThenTheNextRunCompletes(t *testing.T) {
	if os.Getenv("RECONCILE_DIE_MIDRUN") != "" {
		dieMidRun(t)
		return
	}
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	pool := env.Pool(t, dsn)
	c := s3Client(t, env)
	d := time.Date(2026, 1, 15, 0, 0, 0, 0, reconcile.China) // a date of this test's own
	cleanPrefix(t, c, "wechat/2026-01-15/")
	cleanPrefix(t, c, "his/2026-01-15/")
	standardDay(d).seed(t, pool, c)

	cmd := exec.Command(os.Args[0], "-test.run=^TestReconcile_KilledMidRunThenTheNextRunCompletes$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RECONCILE_DIE_MIDRUN="+dsn)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("the child should have died mid-run with 137, got %v\n%s", err, out)
	}
	var status string
	if err := pool.QueryRow(context.Background(), `SELECT status FROM recon_runs WHERE attempt = 1`).Scan(&status); err != nil || status != "running" {
		t.Fatalf("the dead run is left running: %q %v", status, err)
	}

	svc := service(t, env, pool)
	// This run also takes the spilled path (a day above SpillRows is joined in parts on
	// disk): its results must be the same.
	svc.Config.SpillRows = 2
	// The dead run's lock goes with its Postgres session, which ends as soon as the
	// server sees the connection closed: until then a run is refused as in progress.
	var run *reconcile.Run
	testenv.Eventually(t, 20*time.Second, "the dead run's lock released", func() bool {
		run, err = svc.Run(context.Background(), reconcile.RunRequest{Channel: "wechat", Date: "2026-01-15",
			Trigger: reconcile.TriggerManual, Actor: "staff-fin-01", RequestID: "req-kill-test"})
		return !errors.Is(err, reconcile.ErrRunInProgress)
	})
	if err != nil {
		t.Fatal(err)
	}
	var man struct{ Spilled bool }
	if run.Manifest != nil {
		_ = json.Unmarshal(*run.Manifest, &man)
	}
	if run.Attempt != 2 || run.Status != "succeeded" || !run.Current || !man.Spilled {
		t.Fatalf("next run: %+v", run)
	}
	_ = pool.QueryRow(context.Background(), `SELECT status FROM recon_runs WHERE attempt = 1`).Scan(&status)
	if status != "failed" {
		t.Errorf("the dead run: want failed, got %s", status)
	}
	ds, _, err := svc.Discrepancies(context.Background(), reconcile.DiscrepancyFilter{Channel: "wechat", Date: "2026-01-15"},
		reconcile.Page{Number: 1, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Class+":"+d.Key)
	}
	if !sameSet(got, wantStandard) {
		t.Errorf("want %v, got %v", wantStandard, got)
	}
	var refunds, runs int
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM recon_refunds`).Scan(&refunds)
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM recon_current`).Scan(&runs)
	if refunds != 2 || runs != 1 {
		t.Errorf("want 2 refunds and one current run, got %d, %d", refunds, runs)
	}
}

func service(t *testing.T, env *testenv.Env, pool *pgxpool.Pool) *reconcile.Service {
	return &reconcile.Service{Pool: pool, Objects: reconcile.S3Objects{Client: s3Client(t, env)}, Audit: &audit.Log{},
		Channel: &reconcile.SimulatedChannel{Pool: pool}, Config: reconcile.Config{Channels: []string{"wechat"}}}
}

// dieMidRun is the child: it runs and exits abruptly once the reports are written.
func dieMidRun(t *testing.T) {
	env := testenv.Load(t)
	pool := env.Pool(t, os.Getenv("RECONCILE_DIE_MIDRUN"))
	svc := service(t, env, pool)
	svc.Hook = func(stage string) {
		if stage == "reported" {
			os.Exit(137)
		}
	}
	_, err := svc.Run(context.Background(), reconcile.RunRequest{Channel: "wechat", Date: "2026-01-15", Trigger: reconcile.TriggerManual,
		Actor: "staff-fin-01", RequestID: "req-kill-child"})
	t.Fatalf("the run should not have returned: %v", err)
}

// 银社对账: the bank's card-status file against the platform's cards, with a malformed
// line that is reported while the rest is reconciled.
func TestReconcile_CardStatusAgainstTheBank(t *testing.T) {
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	pool := env.Pool(t, dsn)
	ctx := context.Background()
	c := s3Client(t, env)
	for _, cd := range []struct{ no, status string }{{"A00000001", "normal"}, {"A00000002", "formal_loss"}, {"A00000003", "normal"}} {
		if _, err := pool.Exec(ctx, `INSERT INTO cards (card_id, card_no, status, status_since) VALUES ($1, $2, $3, now())`,
			"card-"+cd.no, cd.no, cd.status); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 1, 16, 0, 0, 0, 0, reconcile.China)
	cleanPrefix(t, c, "cards/2026-01-16/")
	file := "H|SIMBANK|20260116\nD|A00000001|1|2026-01-16 01:00:00\nD|A00000002|4|2026-01-16 01:00:00\nD|A00000004|1|2026-01-16 01:00:00\nD|A00000005|?|x\nT|4\n"
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(reconcile.StatementBucket), Key: aws.String("cards/2026-01-16/status.txt"),
		Body: strings.NewReader(file)}); err != nil {
		t.Fatal(err)
	}
	svc := service(t, env, pool)
	run, err := svc.Run(ctx, reconcile.RunRequest{Channel: "cards", Date: day.Format(time.DateOnly), Trigger: reconcile.TriggerManual,
		Actor: "staff-fin-01"})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "succeeded" || run.ControlsOK == nil || *run.ControlsOK || run.Counts["matched"] != 1 ||
		!strings.Contains(string(*run.Manifest), `"line": 5`) {
		t.Fatalf("run: %+v %s", run, *run.Manifest)
	}
	ds, _, err := svc.Discrepancies(ctx, reconcile.DiscrepancyFilter{RunID: run.RunID}, reconcile.Page{Number: 1, Size: 50})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Class+":"+d.Key+":"+d.PlatformStatus+"/"+d.ChannelStatus)
	}
	want := []string{"long:A00000004:/normal", "short:A00000003:normal/", "status-mismatch:A00000002:formal_loss/temporary_loss"}
	if !slices.Equal(got, want) {
		t.Errorf("want %v, got %v", want, got)
	}
}
