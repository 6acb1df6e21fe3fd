package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/problem"
)

func testServer(t *testing.T, cfg Config, r *Router, mapErr ErrorMapper) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.WriteTimeout == 0 {
		cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 5*time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := NewServer(cfg, r, slog.New(slog.NewTextHandler(io.Discard, nil)), mapErr)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func decodeProblem(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("want %s, got %q", problem.ContentType, ct)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestServer_RoutesParamsAndRequestID(t *testing.T) {
	r := NewRouter("test")
	r.Get("/cards/{id}", func(req handler.Request) (handler.Response, error) {
		return JSON(200, map[string]string{"id": Param(req, "id"), "path": Path(req), "rid": RequestID(req), "q": req.QueryString})
	})
	_, ts := testServer(t, Config{}, r, nil)

	req, _ := http.NewRequest("GET", ts.URL+"/cards/C123?x=1", nil)
	req.Header.Set("X-Request-Id", "req-abcdef12")
	req.Header.Set(pathHeader, "/spoofed") // must be ignored
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&got)
	want := map[string]string{"id": "C123", "path": "/cards/C123", "rid": "req-abcdef12", "q": "x=1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: want %q, got %q", k, v, got[k])
		}
	}
	if resp.Header.Get("X-Request-Id") != "req-abcdef12" {
		t.Errorf("want request id echoed, got %q", resp.Header.Get("X-Request-Id"))
	}

	// A malformed id is replaced, not trusted.
	req, _ = http.NewRequest("GET", ts.URL+"/cards/1", nil)
	req.Header.Set("X-Request-Id", "bad id with spaces and <tags>")
	resp2, _ := http.DefaultClient.Do(req)
	resp2.Body.Close()
	if rid := resp2.Header.Get("X-Request-Id"); !validRequestID(rid) || strings.Contains(rid, " ") {
		t.Errorf("want a generated well-formed id, got %q", rid)
	}
}

func TestServer_ProblemAnswers(t *testing.T) {
	r := NewRouter("test")
	r.Post("/items", func(req handler.Request) (handler.Response, error) {
		return handler.Response{}, problem.Invalid("bad item", problem.Field("name", "required"))
	})
	r.Get("/outage", func(req handler.Request) (handler.Response, error) {
		return handler.Response{}, errors.New("dial tcp: connection refused")
	})
	r.Get("/bug", func(req handler.Request) (handler.Response, error) { return handler.Response{}, errors.New("nil map") })
	r.Get("/panic", func(req handler.Request) (handler.Response, error) { panic("boom") })
	outage := func(err error) *problem.Problem {
		if strings.Contains(err.Error(), "refused") {
			return problem.Unavailable("redis", 5*time.Second, err)
		}
		return nil
	}
	_, ts := testServer(t, Config{}, r, outage)

	cases := []struct {
		method, path string
		status       int
		check        func(t *testing.T, m map[string]any, h http.Header)
	}{
		{"POST", "/items", 400, func(t *testing.T, m map[string]any, _ http.Header) {
			params, _ := m["invalidParams"].([]any)
			if len(params) != 1 || params[0].(map[string]any)["name"] != "name" {
				t.Errorf("want invalidParams naming the field, got %v", m["invalidParams"])
			}
		}},
		{"GET", "/outage", 503, func(t *testing.T, m map[string]any, h http.Header) {
			if h.Get("Retry-After") != "5" || m["dependency"] != "redis" {
				t.Errorf("want Retry-After 5 and dependency redis, got %q %v", h.Get("Retry-After"), m)
			}
		}},
		{"GET", "/bug", 500, func(t *testing.T, m map[string]any, _ http.Header) {
			if strings.Contains(m["detail"].(string), "nil map") {
				t.Error("internal error text must not reach the caller")
			}
		}},
		{"GET", "/panic", 500, nil},
		{"GET", "/nowhere", 404, nil},
		{"DELETE", "/items", 405, nil},
	}
	for _, c := range cases {
		t.Run(c.method+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("want %d, got %d", c.status, resp.StatusCode)
			}
			m := decodeProblem(t, resp)
			if int(m["status"].(float64)) != c.status || m["title"] == "" || m["requestId"] == "" || m["instance"] != c.path {
				t.Errorf("want status, title, requestId and instance in the body, got %v", m)
			}
			if c.check != nil {
				c.check(t, m, resp.Header)
			}
		})
	}
}

func TestServer_ExecTimeoutBodyLimitAndInflight(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	r := NewRouter("test")
	r.Get("/slow", func(req handler.Request) (handler.Response, error) {
		<-req.Context().Done() // well-behaved: stops at the deadline
		return handler.Response{}, req.Context().Err()
	})
	r.Get("/stuck", func(req handler.Request) (handler.Response, error) {
		<-release // holds its slot until released
		return handler.Response{StatusCode: 200}, nil
	})
	r.Post("/echo", func(req handler.Request) (handler.Response, error) {
		return handler.Response{Body: req.Body}, nil
	})
	_, ts := testServer(t, Config{ExecTimeout: 200 * time.Millisecond, MaxBodyBytes: 1024}, r, nil)
	defer once.Do(func() { close(release) })

	resp, _ := http.Get(ts.URL + "/slow")
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow: want 504, got %d", resp.StatusCode)
	}
	resp, _ = http.Post(ts.URL+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 2048)))
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: want 413, got %d", resp.StatusCode)
	}

	// Hold the only slot, then a second call and readiness both say 429.
	s, ts := testServer(t, Config{ExecTimeout: 5 * time.Second, MaxInflight: 1}, r, nil)
	go func() {
		r, err := http.Get(ts.URL + "/stuck")
		if err == nil {
			r.Body.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for s.inflight.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, _ = http.Post(ts.URL+"/echo", "text/plain", strings.NewReader("hi"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over max_inflight: want 429 with Retry-After, got %d", resp.StatusCode)
	}
	resp, _ = http.Get(ts.URL + "/_/ready")
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("ready at max_inflight: want 429, got %d", resp.StatusCode)
	}
	once.Do(func() { close(release) })
}

func TestServer_ShutdownReportsUnhealthyThenDrains(t *testing.T) {
	started := make(chan struct{})
	r := NewRouter("test")
	r.Get("/work", func(req handler.Request) (handler.Response, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		return handler.Response{Body: []byte("done")}, nil
	})
	s := NewServer(Config{Name: "t", ReadTimeout: time.Second, WriteTimeout: 2 * time.Second, HealthcheckInterval: 200 * time.Millisecond,
		MaxBodyBytes: 1024}, r, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ts := httptest.NewUnstartedServer(nil)
	l := ts.Listener
	go func() { _ = s.Serve(l) }()
	base := "http://" + l.Addr().String()

	body := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/work")
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- string(b)
	}()
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get(base + "/_/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health while draining: want 503, got %d", resp.StatusCode)
	}
	if got := <-body; got != "done" {
		t.Errorf("in-flight request: want it completed, got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestRouter_LiteralSegmentsBeatParameters(t *testing.T) {
	r := NewRouter("test")
	r.Get("/{session}", func(req handler.Request) (handler.Response, error) {
		return handler.Response{Body: []byte("session " + Param(req, "session"))}, nil
	})
	r.Get("/health", func(req handler.Request) (handler.Response, error) {
		return handler.Response{Body: []byte("health")}, nil
	})
	_, ts := testServer(t, Config{}, r, nil)
	for path, want := range map[string]string{"/health": "health", "/abc": "session abc"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s: want %q, got %q", path, want, b)
		}
	}
}

func TestAccessLog_IsTheSameJSONAsTheLogger(t *testing.T) {
	var buf strings.Builder
	a := newAccessLog(&buf, "login-poll")
	a.write(time.Date(2026, 11, 23, 8, 0, 0, 5, time.UTC), "abcdef12-1", "GET", "GET /{session}", 200, 1500*time.Microsecond)
	var m map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	want := map[string]any{"level": "INFO", "msg": "request", "function": "login-poll", "request_id": "abcdef12-1",
		"method": "GET", "route": "GET /{session}", "status": 200.0, "duration_ms": 1.5, "time": "2026-11-23T08:00:00.000000005Z"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: want %v, got %v", k, v, m[k])
		}
	}
}
