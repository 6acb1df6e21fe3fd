//go:build integration

package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/kiosk"
)

// kioskSigner is a kiosk enrolled through the registry: its key id is the one the
// registry derives from its public key.
type kioskSigner struct {
	*signer
	keyID string
}

func (k *kioskSigner) do(t *testing.T, method, path string, h http.Header, body any) *callsign.Response {
	t.Helper()
	r := callsign.Request{Method: method, Path: path, Header: h}
	switch b := body.(type) {
	case nil:
	case []byte:
		r.Body, r.ContentType = b, h.Get("Content-Type")
	default:
		r.Body, _ = json.Marshal(b)
		r.ContentType = "application/json"
	}
	c := k.client(t, "kiosk", false)
	c.KeyID = k.keyID
	resp, err := c.Do(context.Background(), r)
	if err != nil {
		t.Fatalf("%s %s as kiosk %s: %v", method, path, k.appID, err)
	}
	return resp
}

func newKioskKey(t *testing.T) *sm2.PrivateKey {
	t.Helper()
	k, err := gm.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pointHex(k *sm2.PrivateKey) string {
	pt := make([]byte, 65)
	pt[0] = 4
	k.PublicKey.X.FillBytes(pt[1:33])
	k.PublicKey.Y.FillBytes(pt[33:])
	return hex.EncodeToString(pt)
}

// admin registers a kiosk administrator of region.
func (p *localPlatform) kioskAdmin(t *testing.T, appID, region string) *signer {
	t.Helper()
	s := p.register(t, appID, channelauth.KindAdmin, nil)
	macKey, err := gm.DecodeHexKey(p.env.Secret(t, callsign.SecretRegistryMAC), 32, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := kiosk.PutAdmin(context.Background(), p.env.Pool(t, p.dsn), macKey, appID, region); err != nil {
		t.Fatal(err)
	}
	return s
}

// enrol registers a kiosk through the admin's signed call and returns the kiosk's signer.
func enrol(t *testing.T, admin *signer, id, region string) *kioskSigner {
	t.Helper()
	key := newKioskKey(t)
	pemText, _ := gm.MarshalPublicKeyPEM(&key.PublicKey)
	r := admin.do(t, "kiosk", "POST", "/kiosks", nil, map[string]string{"id": id, "name": "自助终端 " + id,
		"regionCode": region, "address": "东莞市南城街道", "model": "ZZ-200", "publicKey": string(pemText)})
	var k kiosk.Kiosk
	if err := json.Unmarshal(r.Body, &k); r.StatusCode != 201 || !r.Signed || err != nil || !k.Registered ||
		k.KeyID != gm.KeyID(&key.PublicKey) {
		t.Fatalf("enrol %s: %d %s", id, r.StatusCode, r.Body)
	}
	return &kioskSigner{signer: &signer{p: admin.p, appID: id, key: key}, keyID: k.KeyID}
}

func heartbeatEvent(at time.Time, comps map[string]string) map[string]any {
	return map[string]any{"id": uuid.NewString(), "type": kiosk.TypeHeartbeat, "time": at.Format(time.RFC3339Nano),
		"data": map[string]any{"status": "ok", "version": "1.2.0", "queuedEvents": 0, "components": comps}}
}

func batch(evs ...map[string]any) map[string]any { return map[string]any{"events": evs} }

func recorded(t *testing.T, r *callsign.Response) kiosk.Recorded {
	t.Helper()
	var out kiosk.Recorded
	if err := json.Unmarshal(r.Body, &out); r.StatusCode != 200 || err != nil {
		t.Fatalf("events: %d %s", r.StatusCode, r.Body)
	}
	return out
}

func getKiosk(t *testing.T, admin *signer, id string) kiosk.Kiosk {
	t.Helper()
	r := admin.do(t, "kiosk", "GET", "/kiosks/"+id, nil, nil)
	var k kiosk.Kiosk
	if err := json.Unmarshal(r.Body, &k); r.StatusCode != 200 || err != nil {
		t.Fatalf("get %s: %d %s", id, r.StatusCode, r.Body)
	}
	return k
}

func commandsOf(t *testing.T, admin *signer, id string) []kiosk.Command {
	t.Helper()
	r := admin.do(t, "kiosk", "GET", "/kiosks/"+id+"/commands", nil, nil)
	var out struct{ Commands []kiosk.Command }
	if err := json.Unmarshal(r.Body, &out); r.StatusCode != 200 || err != nil {
		t.Fatalf("commands of %s: %d %s", id, r.StatusCode, r.Body)
	}
	return out.Commands
}

// The kiosk capability end to end through the local gateway: region-scoped registry,
// kiosk identity, the edge-bridge's event batches, commands, logs, fault alerts and
// revocation.
func TestKiosk_RegistryIdentityEventsCommands(t *testing.T) {
	p := startPlatform(t, "KIOSK_COMMAND_TTL=20s", "KIOSK_OFFLINE_AFTER=10s")
	p.kioskLogOnFailure(t)
	ctx := context.Background()
	pool := p.env.Pool(t, p.dsn)
	gd := p.kioskAdmin(t, "admin-gd", "440000") // 广东
	dg := p.kioskAdmin(t, "admin-dg", "441900") // 东莞
	bj := p.kioskAdmin(t, "admin-bj", "110000") // 北京

	// Registration and region scoping.
	k1 := enrol(t, dg, "dg-k1", "441900")
	k2 := enrol(t, gd, "dg-k2", "441901")
	other := newKioskKey(t)
	for _, c := range []struct {
		who    *signer
		region string
		want   int
	}{{dg, "440100", 403}, {bj, "441900", 403}} {
		r := c.who.do(t, "kiosk", "POST", "/kiosks", nil, map[string]string{"id": "dg-k9", "name": "x", "regionCode": c.region,
			"publicKey": pointHex(other)})
		if r.StatusCode != c.want {
			t.Errorf("%s registering in %s: want %d, got %d %s", c.who.appID, c.region, c.want, r.StatusCode, r.Body)
		}
	}
	if r := dg.do(t, "kiosk", "POST", "/kiosks", nil, map[string]string{"id": "dg-k1", "name": "again", "regionCode": "441900",
		"publicKey": pointHex(other)}); r.StatusCode != 409 {
		t.Errorf("registering a device ID twice: want 409, got %d %s", r.StatusCode, r.Body)
	}
	if r := bj.do(t, "kiosk", "GET", "/kiosks/dg-k1", nil, nil); r.StatusCode != 404 {
		t.Errorf("another region's kiosk: want 404, got %d %s", r.StatusCode, r.Body)
	}
	listIDs := func(s *signer) string {
		r := s.do(t, "kiosk", "GET", "/kiosks", nil, nil)
		var out struct{ Kiosks []kiosk.Kiosk }
		_ = json.Unmarshal(r.Body, &out)
		var ids []string
		for _, k := range out.Kiosks {
			ids = append(ids, k.ID)
		}
		return strings.Join(ids, ",")
	}
	if got := listIDs(dg); got != "dg-k1,dg-k2" {
		t.Errorf("Dongguan admin sees %q", got)
	}
	if got := listIDs(bj); got != "" {
		t.Errorf("Beijing admin sees %q", got)
	}
	if resp, _ := p.do(t, "GET", "/function/kiosk/kiosks", nil, nil); resp.StatusCode != 401 {
		t.Errorf("unsigned registry read: want 401, got %d", resp.StatusCode)
	}
	if r := k1.do(t, "POST", "/kiosks", nil, map[string]string{"id": "x"}); r.StatusCode != 403 {
		t.Errorf("a kiosk registering kiosks: want 403, got %d", r.StatusCode)
	}
	// Edit: any field but the device ID, within the region.
	if r := dg.do(t, "kiosk", "PATCH", "/kiosks/dg-k2", nil, map[string]string{"name": "南城自助机", "address": "新地址"}); r.StatusCode != 200 ||
		!strings.Contains(string(r.Body), "南城自助机") {
		t.Errorf("edit: %d %s", r.StatusCode, r.Body)
	}
	if r := dg.do(t, "kiosk", "PATCH", "/kiosks/dg-k2", nil, map[string]string{"id": "dg-k3"}); r.StatusCode != 400 {
		t.Errorf("edit the device ID: want 400, got %d", r.StatusCode)
	}
	if r := dg.do(t, "kiosk", "PATCH", "/kiosks/dg-k2", nil, map[string]string{"regionCode": "440100"}); r.StatusCode != 403 {
		t.Errorf("move a kiosk out of the region: want 403, got %d", r.StatusCode)
	}

	// Events from the kiosk itself.
	now := time.Now()
	hb := heartbeatEvent(now, map[string]string{"reader": "ok", "printer": "ok", "network": "ok", "disk": "ok"})
	card := map[string]any{"id": uuid.NewString(), "type": kiosk.TypeCardRead, "time": now.Format(time.RFC3339),
		"data": map[string]any{"cardNo": "A12345678", "cardType": "3", "issueDate": "20240101", "expiryDate": "20340101", "name": "张三"}}
	check := map[string]any{"id": uuid.NewString(), "type": kiosk.TypeSelfCheck, "time": now.Format(time.RFC3339),
		"data": map[string]any{"passed": false, "items": []map[string]any{{"name": "printer", "ok": false, "detail": "no ribbon"}}}}
	if got := recorded(t, k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(hb, card, check))); got.Accepted != 3 || got.Duplicates != 0 {
		t.Errorf("first post: %+v", got)
	}
	if got := recorded(t, k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(hb, card, check))); got.Accepted != 0 || got.Duplicates != 3 {
		t.Errorf("the same batch again: want 3 duplicates, got %+v", got)
	}
	var stored string
	_ = pool.QueryRow(ctx, `SELECT data::text FROM kiosk_events WHERE type = 'kiosk.card.read'`).Scan(&stored)
	if strings.Contains(stored, "A12345678") || strings.Contains(stored, "张三") || !strings.Contains(stored, "cardNoBidx") {
		t.Errorf("a card read is stored as %s: want the blind index, no card number, no name", stored)
	}
	bad := heartbeatEvent(now, nil)
	bad["data"].(map[string]any)["status"] = "sleepy"
	r := k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(now, nil), bad))
	if r.StatusCode != 422 || !strings.Contains(string(r.Body), "events[1].data.status") {
		t.Errorf("invalid batch: want 422 naming events[1].data.status, got %d %s", r.StatusCode, r.Body)
	}
	if k := getKiosk(t, dg, "dg-k1"); !k.Online || k.Running != "normal" || k.Components["reader"].State != "ok" || k.Version != "1.2.0" {
		t.Errorf("after a heartbeat: %+v", k)
	}
	if r := dg.do(t, "kiosk", "GET", "/kiosks/dg-k1/self-checks", nil, nil); r.StatusCode != 200 || !strings.Contains(string(r.Body), "no ribbon") {
		t.Errorf("self-checks: %d %s", r.StatusCode, r.Body)
	}

	// A kiosk cannot speak for another: its own key under the other's path, or the other's
	// app id with its key.
	if r := k2.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(now, nil))); r.StatusCode != 403 {
		t.Errorf("dg-k2 posting for dg-k1: want 403, got %d %s", r.StatusCode, r.Body)
	}
	forged := &kioskSigner{signer: &signer{p: p, appID: "dg-k1", key: k2.key}, keyID: k2.keyID}
	if r := forged.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(now, nil))); r.StatusCode != 401 {
		t.Errorf("dg-k1's app id signed with dg-k2's key: want 401, got %d %s", r.StatusCode, r.Body)
	}
	stranger := &kioskSigner{signer: &signer{p: p, appID: "dg-k1", key: other}, keyID: gm.KeyID(&other.PublicKey)}
	if r := stranger.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(now, nil))); r.StatusCode != 401 {
		t.Errorf("an unknown key: want 401, got %d", r.StatusCode)
	}

	// Commands: dg-k2 has never reported (offline); its command stays queued.
	r = dg.do(t, "kiosk", "POST", "/kiosks/dg-k2/commands", nil, map[string]any{"command": "pause"})
	if r.StatusCode != 202 || !strings.Contains(string(r.Body), `"queued"`) {
		t.Fatalf("issue pause: %d %s", r.StatusCode, r.Body)
	}
	if r := dg.do(t, "kiosk", "POST", "/kiosks/dg-k1/commands", nil, map[string]any{"command": "upgrade",
		"args": map[string]string{"url": "ftp://x", "signature": "!", "version": "1.3.0"}}); r.StatusCode != 400 {
		t.Errorf("upgrade with bad args: want 400, got %d %s", r.StatusCode, r.Body)
	}
	up := map[string]any{"kioskIds": []string{"dg-k1", "dg-k2"}, "command": "upgrade", "args": map[string]string{
		"url": "http://127.0.0.1:9000/models/edge-bridge-1.3.0?X-Amz-Signature=abc", "signature": "MEUCIQDxMEUCIQDxMEUCIQDx", "version": "1.3.0"}}
	if r := bj.do(t, "kiosk", "POST", "/kiosk-commands", nil, up); r.StatusCode != 404 {
		t.Errorf("batch upgrade of another region's kiosks: want 404, got %d %s", r.StatusCode, r.Body)
	}
	if r := dg.do(t, "kiosk", "POST", "/kiosk-commands", nil, up); r.StatusCode != 202 {
		t.Fatalf("batch upgrade: %d %s", r.StatusCode, r.Body)
	}
	r = k1.do(t, "GET", "/kiosks/dg-k1/commands", nil, nil)
	var polled struct{ Commands []kiosk.Delivery }
	if err := json.Unmarshal(r.Body, &polled); r.StatusCode != 200 || err != nil || len(polled.Commands) != 1 ||
		polled.Commands[0].Command != "upgrade" || !strings.Contains(string(polled.Commands[0].Args), "1.3.0") {
		t.Fatalf("dg-k1 polls: %d %s", r.StatusCode, r.Body)
	}
	if r := k1.do(t, "GET", "/kiosks/dg-k2/commands", nil, nil); r.StatusCode != 403 {
		t.Errorf("dg-k1 polling dg-k2's commands: want 403, got %d", r.StatusCode)
	}
	for _, c := range commandsOf(t, dg, "dg-k2") {
		if c.Status != kiosk.StatusQueued {
			t.Errorf("offline kiosk's command %s: want queued, got %s", c.Command, c.Status)
		}
	}
	if c := commandsOf(t, dg, "dg-k1"); len(c) != 1 || c[0].Status != kiosk.StatusDelivered || c[0].DeliveredAt == nil {
		t.Errorf("dg-k1's command after its poll: %+v", c)
	}
	result := map[string]any{"id": uuid.NewString(), "type": kiosk.TypeCommandResult, "time": time.Now().Format(time.RFC3339),
		"data": map[string]any{"commandId": polled.Commands[0].ID, "status": "done", "detail": "now 1.3.0"}}
	recorded(t, k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(result)))
	if c := commandsOf(t, dg, "dg-k1"); c[0].Status != kiosk.StatusDone {
		t.Errorf("after the kiosk's result: %+v", c[0])
	}
	var announced int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE producer = 'kiosk' AND event_type = 'cn.sscard.kiosk.command.issued.v1'`).Scan(&announced)
	if announced != 3 {
		t.Errorf("KioskCommandIssued in the outbox: want 3, got %d", announced)
	}

	// Logs.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("2026-12-04 08:00:00 INFO reader attached\n"))
	_ = zw.Close()
	if r := k1.do(t, "POST", "/kiosks/dg-k1/logs", http.Header{"Content-Type": {"application/gzip"}, "X-Log-Date": {"2026-12-04"}},
		gz.Bytes()); r.StatusCode != 201 {
		t.Fatalf("log upload: %d %s", r.StatusCode, r.Body)
	}
	r = dg.do(t, "kiosk", "GET", "/kiosks/dg-k1/logs", nil, nil)
	var logs struct{ Logs []kiosk.LogFile }
	if err := json.Unmarshal(r.Body, &logs); err != nil || len(logs.Logs) != 1 || logs.Logs[0].Date != "2026-12-04" || !logs.Logs[0].Gzip {
		t.Fatalf("log list: %d %s", r.StatusCode, r.Body)
	}
	if r := dg.do(t, "kiosk", "GET", "/kiosks/dg-k1/logs/"+logs.Logs[0].ID, nil, nil); r.StatusCode != 200 || !bytes.Equal(r.Body, gz.Bytes()) {
		t.Errorf("log download: %d, %d bytes", r.StatusCode, len(r.Body))
	}

	// Fault alerts: one SMS per episode.
	alerts := func() int {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE producer = 'kiosk' AND event_type = 'cn.sscard.sms.requested.v1'
			AND event->'data'->>'recipientRef' = 'group:kiosk-maintainers' AND event->'data'->>'template' = 'kiosk_fault'`).Scan(&n)
		return n
	}
	faulty := map[string]string{"reader": "ok", "printer": "fault", "network": "ok", "disk": "ok"}
	recorded(t, k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(time.Now(), faulty))))
	recorded(t, k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(time.Now().Add(time.Millisecond), faulty))))
	if n := alerts(); n != 1 {
		t.Errorf("a printer fault reported twice: want 1 alert, got %d", n)
	}
	if k := getKiosk(t, dg, "dg-k1"); k.Running != "abnormal" || k.Components["printer"].Running != "abnormal" {
		t.Errorf("faulty printer: %+v", k.Health)
	}
	// Offline: silent past kiosk_offline_after, the sweep alerts once.
	time.Sleep(11 * time.Second)
	if k := getKiosk(t, dg, "dg-k1"); k.Online {
		t.Error("silent kiosk still online")
	}
	for range 2 {
		if resp, body := p.do(t, "POST", "/function/kiosk/", http.Header{"X-Connector": {"test"}}, nil); resp.StatusCode != 200 {
			t.Fatalf("sweep: %d %s", resp.StatusCode, body)
		}
	}
	var offline int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE producer = 'kiosk' AND event->'data'->'params'->>'component' = 'offline'
		AND event->'data'->'params'->>'kioskId' = 'dg-k1'`).Scan(&offline)
	if offline != 1 {
		t.Errorf("offline alerts for dg-k1: want 1, got %d", offline)
	}

	// Expiry: dg-k2's commands were never fetched; past the TTL they expire, undelivered.
	eventually(t, 30*time.Second, "dg-k2's commands expired", func() bool {
		for _, c := range commandsOf(t, dg, "dg-k2") {
			if c.Status != kiosk.StatusExpired {
				return false
			}
		}
		return true
	})
	if r := k2.do(t, "GET", "/kiosks/dg-k2/commands", nil, nil); r.StatusCode != 200 || strings.Contains(string(r.Body), "pause") {
		t.Errorf("expired commands delivered: %d %s", r.StatusCode, r.Body)
	}

	// Revocation takes effect at once, here and at card-apply's gate.
	if r := gd.do(t, "kiosk", "POST", "/kiosks/dg-k1/revoke", nil, nil); r.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	if r := k1.do(t, "POST", "/kiosks/dg-k1/events", nil, batch(heartbeatEvent(time.Now(), nil))); r.StatusCode != 401 && r.StatusCode != 403 {
		t.Errorf("revoked kiosk: want refused, got %d %s", r.StatusCode, r.Body)
	}
	var registered bool
	_ = pool.QueryRow(ctx, `SELECT registered FROM kiosks WHERE kiosk_id = 'dg-k1'`).Scan(&registered)
	if registered {
		t.Error("card-apply's gate still sees dg-k1 registered")
	}
}

// kioskLogOnFailure prints the end of the kiosk function's log when the test fails.
func (p *localPlatform) kioskLogOnFailure(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("test took %s", time.Since(start).Round(time.Millisecond))
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(p.logs, "logs", "kiosk.log"))
			t.Logf("kiosk log:\n%s", tail(b, 6000))
		}
	})
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// registrationBook writes a registration workbook of n rows; bad maps row index to a
// broken registration.
func registrationBook(t *testing.T, rows [][]string) []byte {
	t.Helper()
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	h := make([]any, len(kiosk.Columns))
	for i, c := range kiosk.Columns {
		h[i] = c
	}
	_ = sw.SetRow("A1", h)
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, vals); err != nil {
			t.Fatal(err)
		}
	}
	_ = sw.Flush()
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An Excel batch of 1,000 rows with some bad ones: exactly those come back, in a
// workbook to fix and upload again; 1,001 rows are refused.
func TestKiosk_WorkbookRegistration(t *testing.T) {
	p := startPlatform(t)
	p.kioskLogOnFailure(t)
	dg := p.kioskAdmin(t, "admin-dg", "441900")
	bj := p.kioskAdmin(t, "admin-bj", "110000")
	enrol(t, dg, "wb-taken", "441900")
	rows := make([][]string, kiosk.MaxBatchRows)
	for i := range rows {
		rows[i] = []string{fmt.Sprintf("wb-%04d", i), fmt.Sprintf("终端%d", i), "441900", "东莞", "ZZ-200", pointHex(newKioskKey(t))}
	}
	want := map[string]string{} // device ID → a word the reason must contain
	rows[3][2], want["wb-0003"] = "440100", "region"
	rows[10][5], want["wb-0010"] = "04abcdef", "publicKey"
	rows[500][1], want["wb-0500"] = "", "name"
	rows[777][0], want["wb-taken"] = "wb-taken", "registered already"
	rows[998][0] = "wb-0997" // a second row with an ID used above
	want["wb-0997"] = "twice"
	rows[999][0], want["bad id!"] = "bad id!", "id"
	xlsx := http.Header{"Content-Type": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}}
	r := dg.do(t, "kiosk", "POST", "/kiosk-batches", xlsx, registrationBook(t, rows))
	var res kiosk.BatchResult
	if err := json.Unmarshal(r.Body, &res); r.StatusCode != 200 || err != nil {
		t.Fatalf("batch: %d %s", r.StatusCode, r.Body)
	}
	if res.Rows != 1000 || res.Failed != 6 || res.Registered != 994 || res.FailuresFile == "" {
		t.Fatalf("batch result: rows %d registered %d failed %d file %q: %+v", res.Rows, res.Registered, res.Failed,
			res.FailuresFile, res.Failures)
	}
	var n int
	_ = p.env.Pool(t, p.dsn).QueryRow(context.Background(), `SELECT count(*) FROM kiosks WHERE kiosk_id LIKE 'wb-0%' AND registered`).Scan(&n)
	if n != 994 {
		t.Errorf("registered in the database: want 994, got %d", n)
	}
	// The failure workbook lists exactly the bad rows, each with its row number and reason.
	r = dg.do(t, "kiosk", "GET", res.FailuresFile, nil, nil)
	if r.StatusCode != 200 {
		t.Fatalf("failure file: %d %s", r.StatusCode, r.Body)
	}
	f, err := excelize.OpenReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.GetRows("Sheet1")
	if len(got) != 7 || got[0][len(kiosk.Columns)+1] != kiosk.FailureColumns[len(kiosk.FailureColumns)-1] {
		t.Fatalf("failure workbook: %d rows %v", len(got)-1, got)
	}
	for _, row := range got[1:] {
		id, reason := row[0], row[len(row)-1]
		word, ok := want[id]
		if !ok || !strings.Contains(reason, word) {
			t.Errorf("failure row %v: reason %q, want one of %v", row[:3], reason, want)
		}
	}
	// Another region's admin cannot fetch it.
	if r := bj.do(t, "kiosk", "GET", res.FailuresFile, nil, nil); r.StatusCode != 404 {
		t.Errorf("failure file from another region: want 404, got %d", r.StatusCode)
	}
	// 1,001 rows: refused whole.
	rows = append(rows, []string{"wb-1000", "x", "441900", "", "", pointHex(newKioskKey(t))})
	if r := dg.do(t, "kiosk", "POST", "/kiosk-batches", xlsx, registrationBook(t, rows)); r.StatusCode != 422 ||
		!strings.Contains(string(r.Body), "1000") {
		t.Errorf("1,001 rows: want 422, got %d %s", r.StatusCode, r.Body)
	}
}
