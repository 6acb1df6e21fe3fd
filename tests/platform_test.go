//go:build integration

// End-to-end tests of the local platform: the gateway starts the nine function binaries
// against the real Postgres, Redis and MinIO of `make test`, routes to them, and carries
// CloudEvents between them on JetStream (its embedded nats-server, or the one nats_url
// names) through the event connector.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/tests/testenv"
)

var functionNames = []string{"card-apply", "face-match", "kiosk", "login-poll", "loss-report",
	"photo-audit-alert", "qr-code", "reconcile", "sms-alert"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildBinaries builds the function binaries and the gateway once per test run.
func buildBinaries(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "sscard-bin-")
		if buildErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", binDir+"/", "./functions/...", "./infra/gateway")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type localPlatform struct {
	url  string
	logs string
	env  *testenv.Env
	dsn  string
	pool *pgxpool.Pool // opened on first use by helpers that read the database
}

// startPlatform builds the binaries and runs the gateway as make run does.
func startPlatform(t *testing.T, extraEnv ...string) *localPlatform {
	t.Helper()
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	dir := t.TempDir()
	bin := buildBinaries(t, env.Root)
	addr := freeAddr(t)
	logs := filepath.Join(dir, "logs")
	gwLog, _ := os.Create(filepath.Join(dir, "gateway.log"))
	cmd := exec.Command(filepath.Join(bin, "gateway"), "-listen", addr, "-stack", filepath.Join(env.Root, "stack.yml"),
		"-bin", bin, "-logs", logs, "-base-port", "0", "-drain", "0s",
		"-connector-min-backoff", "200ms")
	// ECARD_AUTHORITY fills stack.yml's ecard_authority as make run does; the development
	// switch comes with FunctionEnv.
	cmd.Env = append(append(append(os.Environ(), env.FunctionEnv(dsn)...), "ECARD_AUTHORITY=local"), extraEnv...)
	cmd.Stdout, cmd.Stderr = gwLog, gwLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &localPlatform{url: "http://" + addr, logs: dir, env: env, dsn: dsn}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		gwLog.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
			t.Logf("gateway log:\n%s", tail(b, 4000))
		}
	})
	testenv.Eventually(t, 90*time.Second, "gateway ready", func() bool {
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func TestPlatform_EveryFunctionAnswersBehindTheGateway(t *testing.T) {
	p := startPlatform(t)
	for _, name := range functionNames {
		for _, route := range []string{"/_/health", "/health"} {
			resp, body := p.do(t, "GET", "/function/"+name+route, nil, nil)
			if resp.StatusCode != 200 {
				t.Errorf("%s%s: want 200, got %d %s", name, route, resp.StatusCode, body)
			}
		}
	}
	// A capability that is not built yet says so, as problem+json naming it.
	// A path no function serves is a 404 problem naming the path, not an empty answer.
	resp, body := p.do(t, "POST", "/function/face-match/no-such-route", nil, []byte(`{}`))
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), "no-such-route") {
		t.Errorf("unknown route: want 404 problem+json naming the path, got %d %s", resp.StatusCode, body)
	}
	resp, _ = p.do(t, "GET", "/function/nope/x", nil, nil)
	if resp.StatusCode != 404 {
		t.Errorf("unknown function: want 404, got %d", resp.StatusCode)
	}
	// Schedules from stack.yml annotations are registered.
	var schedules []struct{ Function, Schedule string }
	_, body = p.do(t, "GET", "/system/schedules", nil, nil)
	_ = json.Unmarshal(body, &schedules)
	if len(schedules) != 4 || schedules[0].Function != "kiosk" || schedules[1].Function != "loss-report" ||
		schedules[2].Function != "photo-audit-alert" || schedules[3].Function != "reconcile" {
		t.Errorf("want schedules for kiosk, loss-report, photo-audit-alert and reconcile, got %s", body)
	}
}

func TestPlatform_EventsAreDeliveredAtLeastOnceAndAppliedOnce(t *testing.T) {
	p := startPlatform(t)
	pool := p.env.Pool(t, p.dsn)
	kiosk := fmt.Sprintf("k-%d", rand.IntN(1_000_000))
	hb := heartbeat(t, kiosk, time.Now().Add(-time.Minute))

	// Committed in a producer's outbox: its relay publishes to JetStream, the connector
	// delivers to kiosk.
	p.emit(t, pool, hb)
	p.waitHeartbeats(t, kiosk, 1)
	// Delivered twice more straight to the consumer (a connector redelivering): applied once.
	var outcomes []string
	for range 2 {
		resp, body := p.send(t, "/function/kiosk", hb)
		if resp.StatusCode != 200 {
			t.Fatalf("direct delivery: want 200, got %d %s", resp.StatusCode, body)
		}
		outcomes = append(outcomes, resp.Header.Get("X-Event-Outcome"))
	}
	if outcomes[0] != "duplicate" || outcomes[1] != "duplicate" {
		t.Errorf("redelivery after the connector's delivery: want duplicate twice, got %v", outcomes)
	}
	time.Sleep(500 * time.Millisecond)
	if n := p.heartbeats(t, kiosk); n != 1 {
		t.Errorf("want exactly one heartbeat recorded, got %d", n)
	}

	// Subscriber down: the event waits in JetStream (the connector naks with backoff) and
	// arrives when it is back.
	p.scale(t, "kiosk", 0)
	p.emit(t, pool, heartbeat(t, kiosk, time.Now()))
	time.Sleep(1500 * time.Millisecond)
	p.scale(t, "kiosk", 1)
	p.waitHeartbeats(t, kiosk, 2)
	if b, _ := os.ReadFile(filepath.Join(p.logs, "gateway.log")); !strings.Contains(string(b), "will retry") {
		t.Errorf("want the connector's failed attempt while kiosk was down in the gateway log")
	}
}

// emit commits ev in card-apply's outbox, as card-apply does with its own events.
func (p *localPlatform) emit(t *testing.T, pool *pgxpool.Pool, ev event.Event) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(context.Background(), tx, "card-apply", "", ev)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A function commits a change and its event, then dies before its relay sends the event.
// When it runs again the relay delivers the event, and the consumer applies it once.
func TestPlatform_OutboxSurvivesARestartBetweenCommitAndDelivery(t *testing.T) {
	p := startPlatform(t)
	pool := p.env.Pool(t, p.dsn)
	kiosk := fmt.Sprintf("k-%d", rand.IntN(1_000_000))
	ev := heartbeat(t, kiosk, time.Now())

	p.scale(t, "card-apply", 0) // the producer is down after its commit
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(context.Background(), tx, "card-apply", "", ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := p.heartbeats(t, kiosk); n != 0 {
		t.Fatalf("nothing may be delivered while the producer is down, got %d", n)
	}
	p.scale(t, "card-apply", 1)
	p.waitHeartbeats(t, kiosk, 1)
	var delivered bool
	if err := pool.QueryRow(context.Background(), `SELECT delivered_at IS NOT NULL FROM outbox
		WHERE producer = 'card-apply' AND event_id = $1`, ev.ID()).Scan(&delivered); err != nil || !delivered {
		t.Errorf("want the outbox row marked delivered, got %v %v", delivered, err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := p.heartbeats(t, kiosk); n != 1 {
		t.Errorf("want exactly one effect, got %d", n)
	}
}

func TestPlatform_AsyncInvocationCallsBack(t *testing.T) {
	p := startPlatform(t)
	got := make(chan http.Header, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer cb.Close()
	resp, _ := p.do(t, "POST", "/async-function/kiosk/kiosks/unknown-kiosk", http.Header{"X-Callback-Url": {cb.URL}}, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Call-Id") == "" {
		t.Fatalf("want 202 with X-Call-Id, got %d", resp.StatusCode)
	}
	select {
	case h := <-got:
		if h.Get("X-Function-Status") != "405" && h.Get("X-Function-Status") != "404" {
			t.Errorf("callback: want the function's status (POST on a GET route → 405), got %q", h.Get("X-Function-Status"))
		}
		if h.Get("X-Call-Id") != resp.Header.Get("X-Call-Id") {
			t.Errorf("callback: want the same call id")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no callback")
	}
}

func heartbeat(t *testing.T, kiosk string, at time.Time) event.Event {
	t.Helper()
	ev, err := events.New(events.KioskHeartbeat, "/kiosks/"+kiosk, kiosk, events.KioskHeartbeatData{
		KioskID: kiosk, At: at.UTC().Truncate(time.Millisecond), Status: events.KioskStatusOK, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// send posts ev in binary mode, as brokers do.
func (p *localPlatform) send(t *testing.T, path string, ev event.Event) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", ev.ID())
	h.Set("Ce-Source", ev.Source())
	h.Set("Ce-Type", ev.Type())
	h.Set("Ce-Time", ev.Time().Format(time.RFC3339Nano))
	h.Set("Content-Type", "application/json")
	return p.do(t, "POST", path, h, ev.Data())
}

func (p *localPlatform) do(t *testing.T, method, path string, h http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func (p *localPlatform) scale(t *testing.T, name string, n int) {
	t.Helper()
	resp, body := p.do(t, "POST", "/system/scale-function/"+name, nil, []byte(fmt.Sprintf(`{"replicas":%d}`, n)))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("scale %s to %d: %d %s", name, n, resp.StatusCode, body)
	}
}

// heartbeats counts the heartbeat events kiosk recorded for a kiosk (the registry's
// own reads are for signed administrators).
func (p *localPlatform) heartbeats(t *testing.T, kiosk string) int {
	t.Helper()
	var n int
	if p.pool == nil {
		p.pool = p.env.Pool(t, p.dsn)
	}
	if err := p.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM kiosk_heartbeats WHERE kiosk_id = $1`, kiosk).Scan(&n); err != nil {
		return 0
	}
	return n
}

func (p *localPlatform) waitHeartbeats(t *testing.T, kiosk string, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d heartbeats of %s", n, kiosk), func() bool {
		return p.heartbeats(t, kiosk) == n
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
