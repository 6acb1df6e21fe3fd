package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sscard/platform/infra/stack"
)

// The scheduler calls like cron-connector: POST /function/<name>, empty body, its headers.
func TestScheduler_FiresLikeCronConnector(t *testing.T) {
	type call struct {
		path, topic, connector string
		body                   int
	}
	got := make(chan call, 8)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- call{r.Method + " " + r.URL.Path, r.Header.Get("X-Topic"), r.Header.Get("X-Connector"), len(b)}
	}))
	defer gw.Close()
	f, err := stack.Parse([]byte(`version: 1.0
provider: {name: openfaas}
functions:
  tick:
    annotations: {topic: cron-function, schedule: "@every 1s"}
  plain:
    annotations: {topic: other, schedule: "@every 1s"}
  broken:
    annotations: {topic: cron-function, schedule: "not a schedule"}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s := newScheduler(f, gw.URL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if l := s.list(); len(l) != 1 || l[0].Function != "tick" || l[0].Next.IsZero() {
		t.Fatalf("want only tick scheduled with a next time, got %+v", l)
	}
	s.start()
	defer s.stop()
	select {
	case c := <-got:
		if c.path != "POST /function/tick" || c.topic != "cron-function" || c.connector != "cron-connector" || c.body != 0 {
			t.Errorf("want an empty POST /function/tick with the connector headers, got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("schedule did not fire")
	}
}
