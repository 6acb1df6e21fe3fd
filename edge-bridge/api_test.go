package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLocalAPIIsLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:8090": true, "[::1]:0": true, "localhost:1": true,
		"0.0.0.0:8090": false, "192.168.1.5:8090": false, ":8090": false} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
	h := (&bridge{}).api()
	for host, want := range map[string]int{"evil.example:8090": 403, "10.0.0.1": 403} {
		r := httptest.NewRequest(http.MethodPost, "/actions/apply", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("Host %s: %d %s", host, w.Code, w.Body)
		}
	}
	// A form post from a page (no JSON) is refused before anything else.
	r := httptest.NewRequest(http.MethodPost, "/actions/report-loss", nil)
	r.Host = "127.0.0.1:8090"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("form post: %d", w.Code)
	}
}
