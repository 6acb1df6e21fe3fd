//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/shared/channelauth"
)

// fullWidth writes an ID number as a Chinese input method types it.
func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r + 0xFEE0)
	}
	return b.String()
}

// Progress by ID number: only a signed counter caller may ask, the number travels in the
// body, a registered number and an unregistered one get the same answer, and a number is
// found however it was typed (full-width, lower-case x).
func TestCardApply_ProgressByIDNumber(t *testing.T) {
	p := startPlatform(t)
	pool := p.env.Pool(t, p.dsn)
	const base = "/function/card-apply"
	jsonH := http.Header{"Content-Type": {"application/json"}}
	counter := p.register(t, "outlet-progress-01", channelauth.KindOutlet,
		append(channelauth.Routes(channelauth.KindOutlet), "POST card-apply /progress"))
	presetOnly := p.register(t, "bank-progress-02", channelauth.KindBank, nil) // the bank preset has no progress route

	birth := func() string {
		return time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rand.IntN(15000)).Format("20060102")
	}
	// An ID ending in X, so the lower-case form differs.
	var withX string
	for withX == "" || !strings.HasSuffix(withX, "X") {
		withX = cardApplyID(fmt.Sprintf("110105%s%03d", birth(), rand.IntN(1000)))
	}
	plain := cardApplyID(fmt.Sprintf("440308%s%03d", birth(), rand.IntN(1000)))
	for _, a := range []struct{ typed, name string }{{fullWidth(withX), "周一"}, {plain, "吴二"}} {
		body, _ := json.Marshal(map[string]string{"idNumber": a.typed, "name": a.name, "phone": "13800138000", "channel": "h5"})
		if resp, b := p.do(t, "POST", base+"/applications", jsonH, body); resp.StatusCode != 201 {
			t.Fatalf("apply as %q: %d %s", a.typed, resp.StatusCode, b)
		}
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM applications`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()

	// Strangers: no signature → 401; a signed caller without the route → refused; the old
	// GET with the number in the URL → 410 pointing to POST, answering nothing about it.
	body, _ := json.Marshal(map[string]string{"idNumber": plain})
	if resp, b := p.do(t, "POST", base+"/progress", jsonH, body); resp.StatusCode != 401 || strings.Contains(string(b), "applications") {
		t.Errorf("anonymous POST /progress: want 401, got %d %s", resp.StatusCode, b)
	}
	if r := presetOnly.do(t, "card-apply", "POST", "/progress", nil, map[string]string{"idNumber": plain}); r.StatusCode != 401 && r.StatusCode != 403 {
		t.Errorf("signed caller without the route: want 401/403, got %d %s", r.StatusCode, r.Body)
	}
	if resp, b := p.do(t, "GET", base+"/progress?idNumber="+plain, nil, nil); resp.StatusCode != 410 ||
		!strings.Contains(string(b), "POST") || strings.Contains(string(b), "applications") {
		t.Errorf("GET /progress: want 410 pointing to POST, got %d %s", resp.StatusCode, b)
	}

	// The counter finds each application however the number is typed.
	progress := func(idNumber string) (int, string) {
		r := counter.do(t, "card-apply", "POST", "/progress", nil, map[string]string{"idNumber": idNumber})
		if r.StatusCode != 200 {
			t.Fatalf("progress %q: %d %s", idNumber, r.StatusCode, r.Body)
		}
		var out struct{ Applications []appView }
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		return len(out.Applications), string(r.Body)
	}
	for _, typed := range []string{withX, strings.ToLower(withX), fullWidth(withX), fullWidth(strings.ToLower(withX)), plain, fullWidth(plain)} {
		if n, b := progress(typed); n != 1 || strings.Contains(b, withX) || strings.Contains(b, plain) {
			t.Errorf("progress as %q: want the one application, masked; got %d %s", typed, n, b)
		}
	}
	// Registered without an application, and not registered at all: the same answer.
	registered, _ := registerPerson(t, p, "郑三")
	unregistered := cardApplyID(fmt.Sprintf("320102%s%03d", birth(), rand.IntN(1000)))
	n1, b1 := progress(registered)
	n2, b2 := progress(unregistered)
	if n1 != 0 || n2 != 0 || b1 != b2 {
		t.Errorf("registered vs unregistered: want the same empty answer, got %s and %s", b1, b2)
	}
	if after := count(); after != before {
		t.Errorf("progress must change nothing: %d applications before, %d after", before, after)
	}
}
