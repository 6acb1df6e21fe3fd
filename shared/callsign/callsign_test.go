package callsign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
)

func TestCanonicalRequestGolden(t *testing.T) {
	got, err := CanonicalRequest(RequestFields{Method: "POST", Function: "loss-report", Path: "/cards/C 1/loss",
		RawQuery: "b=2&a=x+y&a=%E4%B8%AD&&c", AppID: "bank-icbc", KeyID: "k1", Timestamp: "1767225600",
		Nonce: "0123456789abcdef0123456789abcdef", Envelope: "", BodySM3: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	want := "GM1-SM2-SM3-REQ\nPOST\nloss-report\n/cards/C%201/loss\na=x%20y&a=%E4%B8%AD&b=2&c=\nbank-icbc\nk1\n" +
		"1767225600\n0123456789abcdef0123456789abcdef\n\n" + strings.Repeat("ab", 32) + "\n"
	if got != want {
		t.Fatalf("canonical string changed:\n%q\nwant\n%q", got, want)
	}
	// Values of one key keep their order (q.Get must not be swappable under a signature).
	a, _ := CanonicalQuery("a=1&a=2")
	b, _ := CanonicalQuery("a=2&a=1")
	if a == b {
		t.Fatal("reordering values of one key does not change the canonical query")
	}
}

func TestCanonicalRejectsInjection(t *testing.T) {
	base := RequestFields{Method: "GET", Function: "kiosk", Path: "/", AppID: "a", KeyID: "k", Timestamp: "1",
		Nonce: "0123456789abcdef", BodySM3: strings.Repeat("0", 64)}
	for name, mod := range map[string]func(*RequestFields){
		"app id with LF":   func(f *RequestFields) { f.AppID = "a\nGET" },
		"key id with CR":   func(f *RequestFields) { f.KeyID = "k\r" },
		"nonce short":      func(f *RequestFields) { f.Nonce = "abc" },
		"timestamp sign":   func(f *RequestFields) { f.Timestamp = "+1" },
		"timestamp zero":   func(f *RequestFields) { f.Timestamp = "01" },
		"method lower":     func(f *RequestFields) { f.Method = "get" },
		"relative path":    func(f *RequestFields) { f.Path = "cards" },
		"bad escape":       func(f *RequestFields) { f.RawQuery = "a=%zz" },
		"upper hex body":   func(f *RequestFields) { f.BodySM3 = strings.Repeat("A", 64) },
		"function":         func(f *RequestFields) { f.Function = "Loss" },
		"envelope with LF": func(f *RequestFields) { f.Envelope = "x\n" },
	} {
		f := base
		mod(&f)
		if s, err := CanonicalRequest(f); err == nil {
			t.Errorf("%s: accepted: %q", name, s)
		}
	}
	if _, err := CanonicalRequest(base); err != nil {
		t.Fatal(err)
	}
	// The path is percent-encoded, so a decoded newline cannot break a line.
	f := base
	f.Path = "/a\nb"
	if s, err := CanonicalRequest(f); err != nil || strings.Count(s, "\n") != 11 {
		t.Fatalf("%q %v", s, err)
	}
}

func TestRoundTripPlainAndEnveloped(t *testing.T) {
	for _, env := range []bool{false, true} {
		t.Run("envelope="+strconv.FormatBool(env), func(t *testing.T) {
			fx := newFixture(t, nil)
			w := &wire{}
			c := fx.client(env, w)
			var out map[string]any
			resp, err := c.CallJSON(context.Background(), http.MethodPost, "/cards/C0001/loss", url.Values{"reason": {"stolen"}},
				map[string]string{"marker": "SECRET-PLAINTEXT-42"}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !resp.Signed || out["status"] != "temporary-loss" || out["card"] != "C0001" || out["app"] != testApp ||
				!strings.Contains(out["echo"].(string), "SECRET-PLAINTEXT-42") {
				t.Fatalf("unexpected answer %v (signed %v)", out, resp.Signed)
			}
			if fx.seen.Caller.AppID != testApp || fx.seen.Caller.KeyID != testKeyID || fx.seen.Caller.Enveloped != env ||
				fx.seen.Caller.Kind != "bank" || fx.seen.ContentType != "application/json" || fx.seen.ID != "C0001" {
				t.Fatalf("handler saw %+v", fx.seen)
			}
			onWire := bytes.Contains(w.reqs[0].body, []byte("SECRET-PLAINTEXT-42"))
			answerOnWire := bytes.Contains(w.resps[0].body, []byte("temporary-loss"))
			if env && (onWire || answerOnWire) {
				t.Fatal("plaintext visible on the wire of an enveloped call")
			}
			if !env && !onWire {
				t.Fatal("plain call: body missing")
			}
			if h := w.resps[0].header; h.Get(HeaderRequestNonce) != w.reqs[0].header.Get(HeaderNonce) ||
				h.Get(HeaderSignature) == "" || h.Get("Cache-Control") != "no-store" {
				t.Fatalf("response headers %v", h)
			}
			if env != (w.resps[0].header.Get(HeaderEnvelope) == ResponseEnvelope) {
				t.Fatal("response envelope does not follow the request")
			}

			// A signed problem from the handler, a 204, and a GET through a wildcard route.
			_, err = c.CallJSON(context.Background(), http.MethodPost, "/fail", nil, map[string]int{"n": 1}, nil)
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != http.StatusConflict || !se.Signed || se.Problem["type"] != "urn:sscard:problem:conflict" {
				t.Fatalf("want a signed 409 problem, got %v", err)
			}
			resp, err = c.Do(context.Background(), Request{Method: http.MethodDelete, Path: "/cards/C0001"})
			if err != nil || resp.StatusCode != http.StatusNoContent || !resp.Signed {
				t.Fatalf("delete: %v %+v", err, resp)
			}
			if _, err := c.CallJSON(context.Background(), http.MethodGet, "/cards/C0002", nil, nil, &out); err != nil || out["card"] != "C0002" {
				t.Fatalf("get: %v %v", err, out)
			}
		})
	}
}

func TestRouteNotAllowedIsSigned403(t *testing.T) {
	fx := newFixture(t, nil)
	_, err := fx.client(true, nil).CallJSON(context.Background(), http.MethodPost, "/admin/purge", nil, map[string]int{}, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden || !se.Signed {
		t.Fatalf("want signed 403, got %v", err)
	}
	if fx.seen.Caller.AppID != "" {
		t.Fatal("the handler ran for a route the caller may not use")
	}
}

// Every failed check answers the very same 401 body.
func TestRejectionsAreUniform(t *testing.T) {
	fx := newFixture(t, nil)
	other := mustKey(t)
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)-1] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	cases := []struct {
		name string
		env  bool
		mod  func(c *Client, w *wire)
	}{
		{"tampered body", false, func(_ *Client, w *wire) {
			w.onRequest = func(_ *http.Request, b []byte) []byte { return bytes.Replace(b, []byte("C0001"), []byte("C0002"), 1) }
		}},
		{"tampered body with its hash header recomputed", false, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte {
				b = bytes.Replace(b, []byte("C0001"), []byte("C0002"), 1)
				r.Header.Set(HeaderBodySM3, BodySM3(b))
				return b
			}
		}},
		{"tampered timestamp header", false, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte {
				ts, _ := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
				r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts-1, 10))
				return b
			}
		}},
		{"added query parameter", false, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "reason=found"; return b }
		}},
		{"tampered signature", false, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte {
				r.Header.Set(HeaderSignature, flip(r.Header.Get(HeaderSignature)))
				return b
			}
		}},
		{"missing signature", false, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte { r.Header.Del(HeaderSignature); return b }
		}},
		{"envelope header stripped", true, func(_ *Client, w *wire) {
			w.onRequest = func(r *http.Request, b []byte) []byte { r.Header.Del(HeaderEnvelope); return b }
		}},
		{"wrong key", false, func(c *Client, _ *wire) { c.Key = other }},
		{"unknown app", false, func(c *Client, _ *wire) { c.AppID = "bank-nobody" }},
		{"unknown key id", false, func(c *Client, _ *wire) { c.KeyID = "k9" }},
		{"expired timestamp", false, func(c *Client, _ *wire) {
			c.Now = func() time.Time { return time.Now().Add(-DefaultWindow - 5*time.Second) }
		}},
		{"timestamp from the future", false, func(c *Client, _ *wire) {
			c.Now = func() time.Time { return time.Now().Add(DefaultWindow + 5*time.Second) }
		}},
		{"signed for another function", false, func(c *Client, _ *wire) { c.Function = "kiosk" }},
		{"envelope for an unknown server key", true, func(c *Client, _ *wire) { c.ServerEncKey = &other.PublicKey }},
	}
	var uniform []byte
	check := func(name string, status int, body []byte) {
		t.Helper()
		if status != http.StatusUnauthorized {
			t.Errorf("%s: want 401, got %d %s", name, status, body)
			return
		}
		if uniform == nil {
			uniform = body
			p := decodeJSON(t, body)
			if p["type"] != "urn:sscard:problem:unauthenticated" || p["detail"] != Unauthenticated().Detail {
				t.Fatalf("unexpected 401 body %s", body)
			}
			return
		}
		if !bytes.Equal(body, uniform) {
			t.Errorf("%s: 401 body differs:\n%s\n%s", name, body, uniform)
		}
	}
	for _, tc := range cases {
		w := &wire{}
		c := fx.client(tc.env, w)
		tc.mod(c, w)
		resp, err := c.Do(context.Background(), lossRequest(`{"card":"C0001"}`))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if resp.Signed {
			t.Errorf("%s: a rejection must not be signed", tc.name)
		}
		check(tc.name, resp.StatusCode, resp.Body)
	}

	// Replay: the same bytes twice; the second is refused.
	w := &wire{}
	if _, err := fx.client(true, w).Do(context.Background(), lossRequest(`{"card":"C0001"}`)); err != nil {
		t.Fatal(err)
	}
	status, _, body := send(t, w.reqs[0])
	check("replayed nonce", status, body)
	if fx.seen.Caller.AppID == "" {
		t.Fatal("the first call should have reached the handler")
	}
}

func TestRevokedExpiredSuspended(t *testing.T) {
	for name, mod := range map[string]func(*App, *Key){
		"revoked":     func(_ *App, k *Key) { k.Revoked = true },
		"expired":     func(_ *App, k *Key) { k.NotAfter = time.Now().Add(-time.Minute) },
		"not yet":     func(_ *App, k *Key) { k.NotBefore = time.Now().Add(time.Hour) },
		"app stopped": func(a *App, _ *Key) { a.Active = false },
	} {
		t.Run(name, func(t *testing.T) {
			appKey := mustKey(t)
			fx := newFixture(t, func(c *Config) {
				a := App{ID: testApp, Name: "ICBC", Kind: "bank", Active: true, Routes: testRoutes}
				k := Key{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey, NotBefore: time.Now().Add(-time.Hour)}
				mod(&a, &k)
				c.Registry, _ = Static([]App{a}, []Key{k})
			})
			fx.appKey = appKey
			resp, err := fx.client(false, nil).Do(context.Background(), lossRequest(`{}`))
			if err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want 401, got %v %+v", err, resp)
			}
		})
	}
}

func TestWindowIsConfigurable(t *testing.T) {
	fx := newFixture(t, func(c *Config) { c.Window = 10 * time.Second })
	c := fx.client(false, nil)
	c.Now = func() time.Time { return time.Now().Add(-20 * time.Second) }
	if resp, err := c.Do(context.Background(), lossRequest(`{}`)); err != nil || resp.StatusCode != 401 {
		t.Fatalf("20 s skew with a 10 s window: %v %+v", err, resp)
	}
	c.Now = func() time.Time { return time.Now().Add(-5 * time.Second) }
	if resp, err := c.Do(context.Background(), lossRequest(`{}`)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("5 s skew: %v %+v", err, resp)
	}
}

type failingNonces struct{}

func (failingNonces) Remember(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
}

type failingRegistry struct{}

func (failingRegistry) Lookup(context.Context, string, string) (*Entry, error) {
	return nil, errors.New("postgres: connection refused")
}

func TestFailsClosed(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"nonce store down": func(c *Config) { c.Nonces = failingNonces{} },
		"registry down":    func(c *Config) { c.Registry = failingRegistry{} },
	} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, mod)
			resp, err := fx.client(false, nil).Do(context.Background(), lossRequest(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("want 503 with Retry-After, got %d %s", resp.StatusCode, resp.Body)
			}
			if fx.seen.Caller.AppID != "" {
				t.Fatal("handler ran although the check could not be made")
			}
		})
	}
}

func TestClientRejectsForgedAnswers(t *testing.T) {
	fx := newFixture(t, nil)
	var earlier recorded
	{
		w := &wire{}
		if _, err := fx.client(false, w).Do(context.Background(), lossRequest(`{}`)); err != nil {
			t.Fatal(err)
		}
		earlier = w.resps[0]
	}
	cases := map[string]func(resp *http.Response, b []byte) []byte{
		"altered body": func(_ *http.Response, b []byte) []byte {
			return append(bytes.Clone(b[:len(b)-1]), ' ', '}') // still JSON, one byte more
		},
		"altered status": func(r *http.Response, b []byte) []byte { r.StatusCode = 201; return b },
		"altered content type": func(r *http.Response, b []byte) []byte {
			r.Header.Set("Content-Type", "text/html")
			return b
		},
		"answer of an earlier request": func(r *http.Response, _ []byte) []byte {
			r.Header = earlier.header.Clone()
			return earlier.body
		},
		"signature removed": func(r *http.Response, b []byte) []byte { r.Header.Del(HeaderSignature); return b },
	}
	for name, mod := range cases {
		for _, env := range []bool{false, true} {
			w := &wire{onResponse: mod}
			_, err := fx.client(env, w).Do(context.Background(), lossRequest(`{}`))
			if !errors.Is(err, ErrNotAuthentic) {
				t.Errorf("%s (envelope %v): want ErrNotAuthentic, got %v", name, env, err)
			}
		}
	}
	// An unsigned 200 from a route without Require, and a server key the client does not trust.
	if _, err := fx.client(false, nil).Do(context.Background(), Request{Method: "GET", Path: "/open"}); !errors.Is(err, ErrNotAuthentic) {
		t.Errorf("unsigned 200: %v", err)
	}
	c := fx.client(false, nil)
	c.ServerSignKeys = map[string]*ecdsa.PublicKey{fx.v.SignKeyID(): &mustKey(t).PublicKey}
	if _, err := c.Do(context.Background(), lossRequest(`{}`)); !errors.Is(err, ErrNotAuthentic) {
		t.Errorf("untrusted server key: %v", err)
	}
}

// Require can be called directly with a handler.Request, without a server.
func TestRequireDirect(t *testing.T) {
	fx := newFixture(t, nil)
	c := fx.client(true, nil)
	hr, p, err := c.NewHTTPRequest(context.Background(), lossRequest(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(hr)
	h := hr.Header.Clone()
	h.Set("X-Function-Path", "/cards/C0001/loss")
	req := handler.Request{Method: hr.Method, Header: h, Body: body, QueryString: hr.URL.RawQuery}
	fn := Require(fx.v, func(req handler.Request) (handler.Response, error) {
		id, ok := Caller(req)
		if !ok || !id.Enveloped || string(req.Body) != `{"x":1}` {
			return handler.Response{}, problem.Invalid("caller or body missing")
		}
		return handler.Response{StatusCode: 200, Body: []byte("ok"), Header: http.Header{"Content-Type": {"text/plain"}}}, nil
	})
	res, err := fn(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Authenticate(res.StatusCode, res.Header, res.Body)
	if err != nil || string(out.Body) != "ok" || out.ContentType != "text/plain" {
		t.Fatalf("%v %+v", err, out)
	}
	if _, err := fn(req); err == nil {
		t.Fatal("direct replay accepted")
	} else if p, ok := problem.As(err); !ok || p.Status != 401 {
		t.Fatalf("want 401 problem, got %v", err)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

// During a rotation of the server's envelope key both keys open envelopes, so callers
// move over at their own pace.
func TestServerEnvelopeKeyRotation(t *testing.T) {
	newEnc := mustKey(t)
	var oldEnc *ecdsa.PublicKey
	fx := newFixture(t, nil)
	oldEnc = &fx.enc.PublicKey
	v, err := New(Config{Function: testFunction, Registry: testRegistry(t, fx.appKey), Nonces: &MemoryNonces{},
		SignKey: fx.sign, EncKeys: []crypto.Decrypter{fx.enc, newEnc}})
	if err != nil {
		t.Fatal(err)
	}
	*fx.v = *v
	for _, pub := range []*ecdsa.PublicKey{oldEnc, &newEnc.PublicKey} {
		c := fx.client(true, nil)
		c.ServerEncKey = pub
		if resp, err := c.Do(context.Background(), lossRequest(`{"k":1}`)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("envelope for key %s: %v %+v", gm.KeyID(pub), err, resp)
		}
	}
}
