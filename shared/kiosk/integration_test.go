//go:build integration

package kiosk

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/tests/testenv"
)

func newService(t testing.TB) *Service {
	t.Helper()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	macKey, err := gm.DecodeHexKey(env.Secret(t, callsign.SecretRegistryMAC), 32, false)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.Vars["s3_endpoint"]), UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(env.Secret(t, "s3-access-key"), env.Secret(t, "s3-secret-key"), ""),
		RetryMaxAttempts: 1})
	return &Service{DB: pool, MACKey: macKey, Reports: &S3Store{Client: c, Bucket: "reports", Create: true},
		Logs: &S3Store{Client: c, Bucket: "kiosk-logs", Create: true}, OfflineAfter: time.Minute}
}

func hexKey(t testing.TB) (string, string) {
	k, err := gm.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 65)
	pt[0] = 4
	k.PublicKey.X.FillBytes(pt[1:33])
	k.PublicKey.Y.FillBytes(pt[33:])
	return hex.EncodeToString(pt), gm.KeyID(&k.PublicKey)
}

func book(t testing.TB, rows [][]string) []byte {
	f := excelize.NewFile()
	sw, _ := f.NewStreamWriter("Sheet1")
	h := make([]any, len(Columns))
	for i, c := range Columns {
		h[i] = c
	}
	_ = sw.SetRow("A1", h)
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		_ = sw.SetRow(cell, vals)
	}
	_ = sw.Flush()
	var b bytes.Buffer
	_ = f.Write(&b)
	return b.Bytes()
}

func TestWorkbookRegistersValidRowsAndListsTheOthers(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	admin := Admin{ID: "admin-dg", Region: "441900"}
	rows := make([][]string, MaxBatchRows)
	for i := range rows {
		k, _ := hexKey(t)
		rows[i] = []string{fmt.Sprintf("it-%03d", i), "终端", "441900", "", "", k}
	}
	rows[7][2] = "440100"
	start := time.Now()
	res, err := s.RegisterWorkbook(ctx, admin, book(t, rows))
	t.Logf("1,000-row workbook registered in %s", time.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != MaxBatchRows-1 || res.Failed != 1 || res.Failures[0].Index != 9 {
		t.Fatalf("%+v", res)
	}
	if _, err := s.FailureFile(ctx, admin, res.BatchID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailureFile(ctx, Admin{ID: "admin-bj", Region: "110000"}, res.BatchID); err == nil {
		t.Fatal("another region's admin read the failure file")
	}
}

// BenchmarkRecord measures the event batch path: one signed kiosk's batches of 500
// heartbeats and card reads into Postgres (one transaction, one multi-row insert each).
func BenchmarkRecord(b *testing.B) {
	s := newService(b)
	s.CardIndex = func(string) ([]byte, error) { return make([]byte, 16), nil }
	ctx := context.Background()
	k, kid := hexKey(b)
	if _, err := s.Register(ctx, Admin{ID: "a", Region: "441900"}, Registration{ID: "bench-k", Name: "bench", RegionCode: "441900",
		PublicKey: k}); err != nil {
		b.Fatal(err)
	}
	c := Caller{AppID: "bench-k", Kind: "kiosk", KeyID: kid}
	hb, _ := json.Marshal(map[string]any{"status": "ok", "version": "1", "queuedEvents": 0, "components": map[string]string{"reader": "ok"}})
	card, _ := json.Marshal(map[string]any{"cardNo": "A12345678", "cardType": "3"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := make([]Event, MaxBatch)
		at := time.Now()
		for j := range evs {
			evs[j] = Event{ID: uuid.NewString(), Type: TypeCardRead, Time: at.Add(time.Duration(j) * time.Microsecond).Format(time.RFC3339Nano), Data: card}
			if j%50 == 0 {
				evs[j].Type, evs[j].Data = TypeHeartbeat, hb
			}
		}
		got, err := s.Record(ctx, c, "bench-k", Batch{Events: evs})
		if err != nil || got.Accepted != MaxBatch {
			b.Fatalf("%+v %v", got, err)
		}
	}
	b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawInsert is the floor of BenchmarkRecord: the same 500 rows per transaction
// inserted straight into kiosk_events, without validation, identity check, dedupe
// accounting or state changes.
func BenchmarkRawInsert(b *testing.B) {
	s := newService(b)
	ctx := context.Background()
	data := `{"cardNoBidx":"00000000000000000000000000000000","cardType":"3"}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids, types, ats, datas := make([]string, MaxBatch), make([]string, MaxBatch), make([]time.Time, MaxBatch), make([]string, MaxBatch)
		for j := range ids {
			ids[j], types[j], ats[j], datas[j] = uuid.NewString(), TypeCardRead, time.Now(), data
		}
		tx, err := s.DB.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kiosk_events (kiosk_id, event_id, type, at, data)
			SELECT 'raw', e.id, e.type, e.at, e.data::jsonb FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[])
				AS e(id, type, at, data)`, ids, types, ats, datas); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "events/s")
}

// One alert per fault episode: a fault reported again is the same episode; recovered and
// faulty again is a new one; a replayed batch sends nothing more; silence is an episode of
// its own, ended by the next heartbeat.
func TestFaultEpisodesAlertOnce(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	k, kid := hexKey(t)
	admin := Admin{ID: "a", Region: "441900"}
	if _, err := s.Register(ctx, admin, Registration{ID: "ep-k", Name: "ep", RegionCode: "441900", PublicKey: k}); err != nil {
		t.Fatal(err)
	}
	c := Caller{AppID: "ep-k", Kind: "kiosk", KeyID: kid}
	start := time.Now().Add(-time.Hour)
	beat := func(i int, printer string) Event {
		d, _ := json.Marshal(map[string]any{"status": "ok", "version": "1", "components": map[string]string{"printer": printer}})
		return Event{ID: uuid.NewString(), Type: TypeHeartbeat, Time: start.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), Data: d}
	}
	alerts := func() int {
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE producer = 'kiosk' AND event_type = 'cn.sscard.sms.requested.v1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := Batch{Events: []Event{beat(0, "ok"), beat(1, "fault"), beat(2, "fault")}}
	for range 2 { // the second post is a replay
		if _, err := s.Record(ctx, c, "ep-k", first); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Record(ctx, c, "ep-k", Batch{Events: []Event{beat(3, "fault")}}); err != nil {
		t.Fatal(err)
	}
	if n := alerts(); n != 1 {
		t.Fatalf("one fault episode: want 1 alert, got %d", n)
	}
	if _, err := s.Record(ctx, c, "ep-k", Batch{Events: []Event{beat(4, "ok"), beat(5, "fault"), beat(6, "ok")}}); err != nil {
		t.Fatal(err)
	}
	if n := alerts(); n != 2 {
		t.Fatalf("recovered, then faulty again: want 2 alerts, got %d", n)
	}
	// The last heartbeat is an hour old: offline, alerted once however often the sweep runs.
	for range 2 {
		if _, err := s.SweepOffline(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := alerts(); n != 3 {
		t.Fatalf("offline: want 3 alerts, got %d", n)
	}
	if _, err := s.Record(ctx, c, "ep-k", Batch{Events: []Event{beat(7, "ok")}}); err != nil {
		t.Fatal(err)
	}
	var open int
	_ = s.DB.QueryRow(ctx, `SELECT count(*) FROM kiosk_faults WHERE kiosk_id = 'ep-k'`).Scan(&open)
	if open != 0 {
		t.Errorf("after a healthy heartbeat: %d episodes still open", open)
	}
	// A revoked kiosk is refused at once.
	if _, err := s.Revoke(ctx, admin, "ep-k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(ctx, c, "ep-k", Batch{Events: []Event{beat(8, "ok")}}); err == nil {
		t.Fatal("revoked kiosk recorded")
	}
}
