//go:build integration

package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sscard/platform/shared/person"
)

// The resident's H5 login page in Debian's Chromium, against the whole local platform:
// QR shown → confirmed in the e-card app (the local authority) → home with the masked
// name; and QR expires → overlay, polling stopped (checked on the server) → 刷新 → a new
// QR that logs in. Screenshots go to the test's output directory ($SSCARD_TEST_OUT or a
// temporary one, printed).
func TestLoginPage_InChromium(t *testing.T) {
	const validity = 6 * time.Second
	p := startPlatform(t, "login_qr_validity="+validity.String(), "login_poll_interval=1s")
	holderID, holderName := registerPerson(t, p, "张三丰")

	out := os.Getenv("SSCARD_TEST_OUT")
	if out == "" {
		out = t.TempDir()
	}
	out = filepath.Join(out, "login-page")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", out)

	ctx := browser(t)
	page := p.url + "/function/qr-code/"

	// 1. QR shown → confirmed on the "phone" → the page shows the home with the masked name.
	run(t, ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#qr[data-session]`)))
	session := attr(t, ctx, "#qr", "data-session")
	shot(t, ctx, out, "1-qr.png")
	p.act(t, session, "scanned", holderID, holderName)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`body[data-state="scanned"]`)))
	p.act(t, session, "confirmed", holderID, holderName)
	// Someone who saw the QR (it carries the session id, not the page's poll secret)
	// races the page right after the confirmation: refused like an unknown session.
	for i := 0; i < 5; i++ {
		p.pollAsStranger(t, session)
	}
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#home`)))
	welcome, idText := text(t, ctx, "#welcome"), text(t, ctx, "#idnumber")
	shot(t, ctx, out, "2-home.png")
	if welcome != "欢迎，张**" {
		t.Errorf("home: want the masked name 欢迎，张**, got %q", welcome)
	}
	if strings.Contains(idText, holderID) || !strings.HasSuffix(idText, holderID[len(holderID)-4:]) {
		t.Errorf("home: want the ID masked to its last four, got %q", idText)
	}

	// 2. A QR nobody scans: it expires, the overlay shows and polling stops.
	run(t, ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`#qr[data-session]`)))
	first := attr(t, ctx, "#qr", "data-session")
	if first == session {
		t.Fatal("a new page load must get a new session")
	}
	expireCtx, cancel := context.WithTimeout(ctx, validity+5*time.Second)
	defer cancel()
	run(t, expireCtx, chromedp.WaitVisible(chromedp.CSS(`#expired.shown`)))
	atExpiry := p.polls(t)
	shot(t, ctx, out, "3-expired.png")
	overlay := text(t, ctx, "#expired-text")
	if overlay != "二维码已失效" {
		t.Errorf("overlay: want 二维码已失效, got %q", overlay)
	}
	time.Sleep(3 * time.Second) // three poll intervals
	if after := p.polls(t); after != atExpiry {
		t.Errorf("after expiry the page must not poll: %d polls at expiry, %d three seconds later", atExpiry, after)
	}

	// 3. 刷新 → a new QR, polling again, and it logs in.
	run(t, ctx, chromedp.Click(chromedp.CSS(`#refresh`)), chromedp.WaitNotVisible(chromedp.CSS(`#expired`)))
	second := attr(t, ctx, "#qr", "data-session")
	if second == first || second == "" {
		t.Fatalf("刷新 must show a new QR, got %q after %q", second, first)
	}
	time.Sleep(1500 * time.Millisecond)
	if p.polls(t) <= atExpiry {
		t.Error("after 刷新 the page must poll again")
	}
	shot(t, ctx, out, "4-refreshed.png")
	p.act(t, second, "confirmed", holderID, holderName)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#home`)))
	shot(t, ctx, out, "5-home-after-refresh.png")
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(390, 844), // a phone
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("Chromium not found: make test installs Debian's chromium package")
	return ""
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func attr(t *testing.T, ctx context.Context, css, name string) string {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(css), name))
	if err != nil {
		t.Fatal(err)
	}
	return r.Value
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// act plays the holder's phone through the local e-card authority.
func (p *localPlatform) act(t *testing.T, session, action, idNumber, name string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sessionId": session, "action": action,
		"holder": map[string]string{"idNumber": idNumber, "name": name}})
	resp, b := p.do(t, "POST", "/function/qr-code/local-ecard/act", nil, body)
	if resp.StatusCode != 200 {
		t.Fatalf("act %s: %d %s", action, resp.StatusCode, b)
	}
}

// pollAsStranger polls session as someone who has only what the QR shows: without the
// poll secret, and with a made-up one. Both must be the unknown-session 404, word for
// word, so a stranger learns nothing (not even that the session exists).
func (p *localPlatform) pollAsStranger(t *testing.T, session string) {
	t.Helper()
	// The same answer but for the request's own instance and id.
	general := func(b []byte) string {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "instance")
		delete(m, "requestId")
		out, _ := json.Marshal(m)
		return string(out)
	}
	_, unknown := p.do(t, "GET", "/function/login-poll/"+strings.Repeat("A", 43), http.Header{"X-Poll-Secret": {strings.Repeat("B", 43)}}, nil)
	for _, h := range []http.Header{nil, {"X-Poll-Secret": {strings.Repeat("B", 43)}}, {"X-Poll-Secret": {"guess"}}} {
		resp, body := p.do(t, "GET", "/function/login-poll/"+session, h, nil)
		if resp.StatusCode != 404 || general(body) != general(unknown) {
			t.Fatalf("poll with secret %q: want the unknown-session 404 %s, got %d %s", h.Get("X-Poll-Secret"), unknown, resp.StatusCode, body)
		}
	}
}

// polls reads login-poll's own request counter for the poll route.
func (p *localPlatform) polls(t *testing.T) int {
	t.Helper()
	_, b := p.do(t, "GET", "/function/login-poll/_/metrics", nil, nil)
	total := 0
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "sscard_function_requests_total{") && strings.Contains(line, `route="GET /{session}"`) {
			f := strings.Fields(line)
			n, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += int(n)
		}
	}
	return total
}

// registerPerson adds a resident to the platform's register and returns the ID number
// and name the e-card app will present.
func registerPerson(t *testing.T, p *localPlatform, name string) (string, string) {
	t.Helper()
	people, err := person.Open(p.env.Pool(t, p.dsn), p.env.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	const idNumber = "11010519491231002X" // GB 11643 sample with a valid check digit
	if _, err := people.Register(context.Background(), idNumber, name, "13800138000"); err != nil {
		t.Fatal(err)
	}
	return idNumber, name
}
