package callsign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
	"github.com/sscard/platform/shared/runtime"
)

const (
	testFunction = "loss-report"
	testApp      = "bank-icbc"
	testKeyID    = "k1"
)

var testRoutes = []string{
	"POST loss-report /cards/{id}/loss",
	"GET loss-report /cards/*",
	"DELETE loss-report /cards/{id}",
	"POST loss-report /fail",
	"GET loss-report /open",
}

// fixture is a function "loss-report" behind a runtime.Server whose routes use Require,
// a registered bank with one key, and the server's keys.
type fixture struct {
	t       testing.TB
	v       *Verifier
	sign    *sm2.PrivateKey
	enc     *sm2.PrivateKey
	appKey  *sm2.PrivateKey
	url     string
	handler http.Handler
	// seen is what the last handler invocation saw.
	seen seenRequest
}

type seenRequest struct {
	Caller      Identity
	Body        string
	ContentType string
	ID          string
}

func mustKey(t testing.TB) *sm2.PrivateKey {
	t.Helper()
	k, err := gm.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRegistry(t testing.TB, appKey *sm2.PrivateKey, extra ...Key) Registry {
	t.Helper()
	keys := append([]Key{{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey, NotBefore: time.Now().Add(-time.Hour)}}, extra...)
	reg, err := Static([]App{{ID: testApp, Name: "ICBC Wuxi branch", Kind: "bank", Active: true, Routes: testRoutes}}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	fx := &fixture{t: t, sign: mustKey(t), enc: mustKey(t), appKey: mustKey(t)}
	cfg := Config{Function: testFunction, Registry: testRegistry(t, fx.appKey), Nonces: &MemoryNonces{},
		SignKey: fx.sign, EncKeys: []crypto.Decrypter{fx.enc}}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fx.v = v
	echo := func(req handler.Request) (handler.Response, error) {
		id, _ := Caller(req)
		fx.seen = seenRequest{Caller: id, Body: string(req.Body), ContentType: req.Header.Get("Content-Type"), ID: runtime.Param(req, "id")}
		return runtime.JSON(http.StatusOK, map[string]any{"status": "temporary-loss", "card": runtime.Param(req, "id"),
			"echo": string(req.Body), "app": id.AppID})
	}
	r := runtime.NewRouter(testFunction)
	r.Post("/cards/{id}/loss", Require(v, echo))
	r.Get("/cards/{id}", Require(v, echo))
	r.Route(http.MethodDelete, "/cards/{id}", Require(v, func(handler.Request) (handler.Response, error) {
		return handler.Response{StatusCode: http.StatusNoContent}, nil
	}))
	r.Post("/admin/purge", Require(v, echo))
	r.Post("/fail", Require(v, func(handler.Request) (handler.Response, error) {
		return handler.Response{}, problem.Conflict("the card is already reported lost")
	}))
	r.Get("/open", func(handler.Request) (handler.Response, error) {
		return runtime.JSON(200, map[string]string{"ok": "yes"})
	})
	srv := runtime.NewServer(runtime.Config{Name: testFunction, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		MaxBodyBytes: 1 << 20}, r, slog.New(slog.DiscardHandler), nil)
	fx.handler = srv.Handler()
	ts := httptest.NewServer(fx.handler)
	t.Cleanup(ts.Close)
	fx.url = ts.URL
	return fx
}

// client returns a client of the registered bank; rt (optional) sits between it and the server.
func (fx *fixture) client(envelope bool, rt http.RoundTripper) *Client {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &Client{HTTP: &http.Client{Transport: rt, Timeout: 10 * time.Second}, BaseURL: fx.url, Function: testFunction,
		AppID: testApp, KeyID: testKeyID, Key: fx.appKey,
		ServerSignKeys: map[string]*ecdsa.PublicKey{fx.v.SignKeyID(): &fx.sign.PublicKey},
		ServerEncKey:   &fx.enc.PublicKey, Envelope: envelope}
}

// wire is a RoundTripper that can rewrite requests and responses and records both.
type wire struct {
	onRequest  func(r *http.Request, body []byte) []byte
	onResponse func(resp *http.Response, body []byte) []byte
	reqs       []recorded
	resps      []recorded
}

type recorded struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	if w.onRequest != nil {
		body = w.onRequest(r, body)
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	w.reqs = append(w.reqs, recorded{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body})
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if w.onResponse != nil {
		rb = w.onResponse(resp, rb)
	}
	w.resps = append(w.resps, recorded{status: resp.StatusCode, header: resp.Header.Clone(), body: rb})
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(rb)), int64(len(rb))
	return resp, nil
}

// send replays a recorded request as is.
func send(t testing.TB, rec recorded) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), rec.method, rec.url, bytes.NewReader(rec.body))
	req.Header = rec.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func lossRequest(body string) Request {
	return Request{Method: http.MethodPost, Path: "/cards/C0001/loss", Body: []byte(body), ContentType: "application/json",
		Header: http.Header{"X-Request-Id": {"callsign-test-0001"}}}
}

func decodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %q", b)
	}
	return m
}
