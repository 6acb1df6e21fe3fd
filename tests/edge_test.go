//go:build integration && linux

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/emmansun/gmsm/sm2"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/sscard"
	"github.com/sscard/platform/tests/testenv"
	"github.com/sscard/platform/tests/vcard"
)

var (
	edgeOnce sync.Once
	edgeBin  string
	edgeErr  error
)

// buildEdge builds the edge-bridge once per run (version "test-1").
func buildEdge(t *testing.T, root string) string {
	t.Helper()
	edgeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sscard-edge-")
		if err != nil {
			edgeErr = err
			return
		}
		edgeBin = filepath.Join(dir, "edge-bridge")
		edgeErr = goBuild(root, edgeBin, "test-1")
	})
	if edgeErr != nil {
		t.Fatal(edgeErr)
	}
	return edgeBin
}

func goBuild(root, out, version string) error {
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", out, "./edge-bridge")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build edge-bridge: %v\n%s", err, b)
	}
	return nil
}

// edgeDaemon is one edge-bridge process run from its own copy of the binary (an upgrade
// swaps that copy) with its own state directory.
type edgeDaemon struct {
	t     *testing.T
	dir   string
	bin   string
	api   string
	args  []string
	cmd   *exec.Cmd
	out   *os.File
	waitc chan struct{}
}

type edgeKeys struct {
	kioskID string
	key     *sm2.PrivateKey
	upgrade *sm2.PrivateKey
}

func startEdge(t *testing.T, p *localPlatform, k edgeKeys, extra ...string) *edgeDaemon {
	t.Helper()
	dir := t.TempDir()
	src := buildEdge(t, p.env.Root)
	d := &edgeDaemon{t: t, dir: dir, bin: filepath.Join(dir, "bin", "edge-bridge"), api: freeAddr(t)}
	_ = os.MkdirAll(filepath.Dir(d.bin), 0o755)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyPEM, _ := gm.MarshalPrivateKeyPEM(k.key)
	upPEM, _ := gm.MarshalPublicKeyPEM(&k.upgrade.PublicKey)
	d.args = append([]string{"-listen", d.api, "-gateway", p.url, "-kiosk-id", k.kioskID,
		"-key", write("kiosk.pem", keyPEM),
		"-server-sign-key", write("sign.pem", []byte(p.env.Secret(t, callsign.SecretSignPublic))),
		"-server-enc-key", write("enc.pem", []byte(p.env.Secret(t, callsign.SecretEncPublic))),
		"-upgrade-key", write("upgrade.pem", upPEM),
		"-state", filepath.Join(dir, "state"), "-heartbeat", "1s", "-command-poll", "300ms", "-blacklist-sync", "500ms",
		"-upgrade-health-window", "20s"}, extra...)
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "edge.log"))
			t.Logf("edge-bridge log (tail):\n%s", tail(b, 6000))
		}
	})
	return d
}

func (d *edgeDaemon) start() {
	d.t.Helper()
	out, err := os.OpenFile(filepath.Join(d.dir, "edge.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.Command(d.bin, d.args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.cmd, d.out, d.waitc = cmd, out, make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { _ = c.Wait(); close(ch) }(cmd, d.waitc)
	testenv.Eventually(d.t, 20*time.Second, "edge-bridge API up", func() bool {
		resp, err := http.Get("http://" + d.api + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// kill9 kills the daemon with SIGKILL: no shutdown code runs.
func (d *edgeDaemon) kill9() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.waitc
	d.out.Close()
	d.cmd = nil
}

func (d *edgeDaemon) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.waitc:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.waitc
	}
	d.out.Close()
	d.cmd = nil
}

type edgeStatus struct {
	Version      string `json:"version"`
	Paused       bool   `json:"paused"`
	QueuedEvents int    `json:"queuedEvents"`
	Reader       struct {
		Health   string `json:"health"`
		Contexts int    `json:"contexts"`
	} `json:"reader"`
	Uplink struct {
		Online     bool  `json:"online"`
		Sent       int64 `json:"sent"`
		Duplicates int64 `json:"duplicates"`
	} `json:"uplink"`
	SelfCheck *struct {
		Passed bool `json:"passed"`
	} `json:"selfCheck"`
}

func (d *edgeDaemon) status() (edgeStatus, error) {
	var s edgeStatus
	resp, err := http.Get("http://" + d.api + "/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

type sse struct {
	Event string
	Data  map[string]any
}

// events subscribes to the daemon's card event stream.
func (d *edgeDaemon) events(t *testing.T) <-chan sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.api+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %v %v", err, resp)
	}
	ch := make(chan sse, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			case line == "" && ev.Event != "":
				ch <- ev
				ev = sse{}
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sse, want string, d time.Duration) sse {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream closed waiting for %s", want)
			}
			if ev.Event == want {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", want, d)
		}
	}
}

func (d *edgeDaemon) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+d.api+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// kioskEvents counts what the platform recorded for the kiosk, by type.
func (p *localPlatform) kioskEvents(t *testing.T, kiosk, typ string) int {
	t.Helper()
	var n int
	if err := p.env.Pool(t, p.dsn).QueryRow(context.Background(),
		`SELECT count(*) FROM kiosk_events WHERE kiosk_id = $1 AND type = $2`, kiosk, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func enrolEdge(t *testing.T, p *localPlatform, id string) (edgeKeys, *signer) {
	t.Helper()
	admin := p.kioskAdmin(t, "admin-"+id, "441900")
	k := enrol(t, admin, id, "441900")
	up, _ := gm.GenerateKey()
	return edgeKeys{kioskID: id, key: k.key, upgrade: up}, admin
}

// The edge-bridge reads the virtual card through the real pcscd and vpcd, tells the UI,
// and the kiosk function records the read (card number only as a blind index, no
// holder data); a malformed card is refused whole; pcscd restarted under the daemon:
// reads work again; the local blacklist learns of a loss reported at the kiosk; pause and
// an upgrade with a bad signature go through the platform's command queue.
func TestEdgeBridge_CardReadThroughPCSCDToPlatform(t *testing.T) {
	pc := vcard.StartPCSCD(t)
	p := startPlatform(t, "local_card_issuing=true")
	bank := p.register(t, "bank-edge", channelauth.KindBank, nil) // before any signed call: registries reload every 30 s
	keys, admin := enrolEdge(t, p, "edge-k1")
	d := startEdge(t, p, keys)
	evs := d.events(t)
	testenv.Eventually(t, 20*time.Second, "self-check and reader ok", func() bool {
		s, err := d.status()
		return err == nil && s.SelfCheck != nil && s.SelfCheck.Passed && s.Reader.Health == "ok"
	})

	profile := vcard.Sample(21)
	if r, b := p.do(t, "POST", "/function/loss-report/cards", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"cardNo":"`+profile.CardNo+`"}`)); r.StatusCode != 201 {
		t.Fatalf("create card: %d %s", r.StatusCode, b)
	}
	card, err := vcard.New(profile)
	if err != nil {
		t.Fatal(err)
	}
	if err := card.Insert(pc.Addr); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, evs, "card.read", 15*time.Second)
	if ev.Data["cardNo"] != profile.CardNo || ev.Data["name"] != "王*" || ev.Data["blocked"] != false ||
		strings.Contains(fmt.Sprint(ev.Data), profile.SSN) {
		t.Fatalf("UI card event %v", ev.Data)
	}
	readID := ev.Data["readId"].(string)
	testenv.Eventually(t, 20*time.Second, "card read recorded by the platform", func() bool {
		return p.kioskEvents(t, keys.kioskID, "kiosk.card.read") == 1
	})
	var data string
	_ = p.env.Pool(t, p.dsn).QueryRow(context.Background(),
		`SELECT data::text FROM kiosk_events WHERE kiosk_id = $1 AND type = 'kiosk.card.read'`, keys.kioskID).Scan(&data)
	if !strings.Contains(data, "cardNoBidx") || strings.Contains(data, profile.CardNo) || strings.Contains(data, profile.SSN) ||
		!strings.Contains(data, "2034-03-15") {
		t.Errorf("platform record of the card read: %s", data)
	}

	// A formal loss asked for at the kiosk goes to loss-report as the kiosk's signed call;
	// without a face match of the holder first, loss-report refuses it and the UI gets its
	// problem as it came. The bank reports a temporary loss; the local blacklist (synced
	// from loss-report) then blocks the card, and answers offline.
	code, body := d.post(t, "/actions/report-loss", map[string]any{"readId": readID, "type": "formal"})
	if code < 400 || code == 503 || !strings.Contains(string(body), "identity") {
		t.Fatalf("formal loss without a face match: want loss-report's refusal, got %d %s", code, body)
	}
	if r := bank.do(t, "loss-report", "POST", "/cards/"+profile.CardNo+"/loss", nil,
		map[string]any{"type": "temporary", "channel": "bank"}); r.StatusCode != 200 {
		t.Fatalf("bank temporary loss: %d %s", r.StatusCode, r.Body)
	}
	testenv.Eventually(t, 15*time.Second, "local blacklist blocks the card", func() bool {
		resp, err := http.Get("http://" + d.api + "/cards/" + profile.CardNo + "/blocked")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b struct{ Blocked bool }
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return b.Blocked
	})
	card.Remove()
	nextEvent(t, evs, "card.removed", 10*time.Second)

	// A malformed card: the UI hears of a failed read; the platform records nothing.
	card.SetFault(vcard.Fault{Kind: vcard.WrongTag, Field: sscard.SSN})
	if err := card.Insert(pc.Addr); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, evs, "card.read-failed", 15*time.Second)
	card.Remove()
	card.SetFault(vcard.Fault{})

	// pcscd dies and comes back under the running daemon: the next card is read.
	before, _ := d.status()
	pc.Kill()
	testenv.Eventually(t, 10*time.Second, "reader fault seen", func() bool {
		s, err := d.status()
		return err == nil && s.Reader.Health == "fault"
	})
	pc.Start()
	if err := card.Insert(pc.Addr); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, evs, "card.read", 20*time.Second)
	if ev.Data["cardNo"] != profile.CardNo || ev.Data["blocked"] != true {
		t.Fatalf("after pcscd restart: %v", ev.Data)
	}
	after, _ := d.status()
	if after.Reader.Contexts <= before.Reader.Contexts {
		t.Errorf("PC/SC contexts %d → %d: no recovery recorded", before.Reader.Contexts, after.Reader.Contexts)
	}
	testenv.Eventually(t, 20*time.Second, "second card read recorded", func() bool {
		return p.kioskEvents(t, keys.kioskID, "kiosk.card.read") == 2
	})
	card.Remove()

	// Commands through the platform: pause, then an upgrade signed by another key.
	issue := func(command string, args any) string {
		r := admin.do(t, "kiosk", "POST", "/kiosks/"+keys.kioskID+"/commands", nil, map[string]any{"command": command, "args": args})
		var c struct{ ID string }
		if err := json.Unmarshal(r.Body, &c); r.StatusCode != 202 || err != nil {
			t.Fatalf("issue %s: %d %s", command, r.StatusCode, r.Body)
		}
		return c.ID
	}
	waitCommand := func(id, status string) string {
		var detail string
		testenv.Eventually(t, 20*time.Second, "command "+id+" "+status, func() bool {
			for _, c := range commandsOf(t, admin, keys.kioskID) {
				if c.ID == id {
					detail = c.Detail
					return c.Status == status
				}
			}
			return false
		})
		return detail
	}
	waitCommand(issue("pause", map[string]any{}), "done")
	if s, _ := d.status(); !s.Paused {
		t.Error("status does not say paused")
	}
	if code, _ := d.post(t, "/actions/report-loss", map[string]any{"readId": "x", "type": "temporary"}); code != 503 {
		t.Errorf("action while paused: want 503, got %d", code)
	}
	waitCommand(issue("resume", map[string]any{}), "done")

	bin, err := os.ReadFile(buildEdge(t, p.env.Root))
	if err != nil {
		t.Fatal(err)
	}
	url := p.publishBuild(t, "edge-bridge-bad", bin)
	forger, _ := gm.GenerateKey()
	sig, _ := gm.Sign(forger, bin)
	detail := waitCommand(issue("upgrade", map[string]any{"url": url, "version": "test-2",
		"signature": b64(sig)}), "failed")
	if !strings.Contains(detail, "signature") {
		t.Errorf("bad-signature upgrade detail %q", detail)
	}
	if s, _ := d.status(); s.Version != "test-1" {
		t.Errorf("version after a refused upgrade: %s", s.Version)
	}
	if _, err := os.Stat(d.bin + ".new"); err == nil {
		t.Error("a refused build was staged")
	}

	// A build signed with the upgrade key: swapped in, restarted into, kept once healthy.
	next := filepath.Join(t.TempDir(), "edge-bridge-2")
	if err := goBuild(p.env.Root, next, "test-2"); err != nil {
		t.Fatal(err)
	}
	bin2, _ := os.ReadFile(next)
	sig2, _ := gm.Sign(keys.upgrade, bin2)
	id := issue("upgrade", map[string]any{"url": p.publishBuild(t, "edge-bridge-2", bin2), "version": "test-2", "signature": b64(sig2)})
	if detail := waitCommand(id, "done"); !strings.Contains(detail, "test-2") {
		t.Errorf("upgrade detail %q", detail)
	}
	if s, err := d.status(); err != nil || s.Version != "test-2" {
		t.Errorf("after the upgrade: version %q (%v)", s.Version, err)
	}
	if _, err := os.Stat(d.bin + ".prev"); err == nil {
		t.Error("the previous build is still kept after the upgrade was confirmed")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// publishBuild puts a build in the object store (MinIO) and returns a presigned URL for
// it, as an operator publishing an upgrade does.
func (p *localPlatform) publishBuild(t *testing.T, name string, bin []byte) string {
	t.Helper()
	ctx := context.Background()
	cli := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.env.Vars["s3_endpoint"]), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(p.env.Secret(t, "s3-access-key"), p.env.Secret(t, "s3-secret-key"), "")})
	key := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	if _, err := cli.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("edge-builds")}); err != nil &&
		!strings.Contains(err.Error(), "BucketAlready") {
		t.Fatal(err)
	}
	if _, err := cli.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("edge-builds"), Key: aws.String(key),
		Body: bytes.NewReader(bin)}); err != nil {
		t.Fatal(err)
	}
	req, err := s3.NewPresignClient(cli).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("edge-builds"), Key: aws.String(key)},
		s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return req.URL
}

// pendingIDs reads the ids of the events waiting in a (stopped) daemon's state file.
func (d *edgeDaemon) pendingIDs(t *testing.T) []string {
	t.Helper()
	st, err := store.Open(filepath.Join(d.dir, "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q, err := st.Queue("events")
	if err != nil {
		t.Fatal(err)
	}
	items, err := q.Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(items))
	for i, it := range items {
		var ev struct{ ID string }
		_ = json.Unmarshal(it.Value, &ev)
		ids[i] = ev.ID
	}
	return ids
}

func (d *edgeDaemon) setArg(name, value string) {
	d.args = append(d.args, name, value) // the last occurrence of a flag wins
}

// Offline: the kiosk function is stopped, events queue up, the daemon is killed with
// SIGKILL while offline and again while draining; when the platform is back every event
// arrives exactly once, in the order it was queued.
func TestEdgeBridge_OfflineKillArrivesOnceInOrder(t *testing.T) {
	p := startPlatform(t)
	keys, _ := enrolEdge(t, p, "edge-k2")
	d := startEdge(t, p, keys, "-heartbeat", "20ms")
	pool := p.env.Pool(t, p.dsn)
	testenv.Eventually(t, 20*time.Second, "online", func() bool { return p.kioskEvents(t, keys.kioskID, "kiosk.heartbeat") >= 5 })

	p.scale(t, "kiosk", 0)
	testenv.Eventually(t, 20*time.Second, "daemon sees the platform gone", func() bool {
		s, err := d.status()
		return err == nil && !s.Uplink.Online
	})
	testenv.Eventually(t, 60*time.Second, "more than one batch queued", func() bool {
		s, err := d.status()
		return err == nil && s.QueuedEvents > 600
	})
	d.kill9()
	pending := d.pendingIDs(t)
	if len(pending) < 600 {
		t.Fatalf("only %d events survived the kill", len(pending))
	}
	d.setArg("-heartbeat", "1h")
	d.start()
	p.scale(t, "kiosk", 1)
	// Kill it again while it drains (after the first batch lands, before the queue is empty).
	first := pending[0]
	testenv.Eventually(t, 30*time.Second, "draining started", func() bool {
		var n int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM kiosk_events WHERE kiosk_id = $1 AND event_id = $2`,
			keys.kioskID, first).Scan(&n)
		return n == 1
	})
	d.kill9()
	d.start()
	testenv.Eventually(t, 60*time.Second, "queue drained", func() bool {
		s, err := d.status()
		return err == nil && s.QueuedEvents == 0 && s.Uplink.Online
	})
	rows, err := pool.Query(context.Background(), `SELECT event_id::text, received_at FROM kiosk_events WHERE kiosk_id = $1`, keys.kioskID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		got[id] = at
	}
	var prev time.Time
	for i, id := range pending {
		at, ok := got[id]
		if !ok {
			t.Fatalf("event %d of %d (%s) never arrived", i, len(pending), id)
		}
		if at.Before(prev) {
			t.Fatalf("event %d arrived before the one queued ahead of it", i)
		}
		prev = at
	}
	s, _ := d.status()
	t.Logf("%d events queued offline arrived once each, in order (platform reported %d duplicates after the kill mid-drain)",
		len(pending), s.Uplink.Duplicates)
}
