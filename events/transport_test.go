package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// binaryRequest renders ev the way a binary-mode producer puts it on the
// wire, written out by hand so the parser is tested against the spec rather
// than against the SDK's own writer.
func binaryRequest(ev event.Event) (http.Header, []byte) {
	h := http.Header{}
	h.Set("Ce-Specversion", ev.SpecVersion())
	h.Set("Ce-Id", ev.ID())
	h.Set("Ce-Type", ev.Type())
	h.Set("Ce-Source", ev.Source())
	if ev.Subject() != "" {
		h.Set("Ce-Subject", ev.Subject())
	}
	h.Set("Ce-Time", ev.Time().Format(time.RFC3339Nano))
	h.Set("Content-Type", ev.DataContentType())
	return h, ev.Data()
}

func structuredRequest(t testing.TB, ev event.Event) (http.Header, []byte) {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	return h, body
}

func sameEvent(t *testing.T, want, got event.Event) {
	t.Helper()
	attrs := []struct{ name, want, got string }{
		{"specversion", want.SpecVersion(), got.SpecVersion()},
		{"id", want.ID(), got.ID()},
		{"type", want.Type(), got.Type()},
		{"source", want.Source(), got.Source()},
		{"subject", want.Subject(), got.Subject()},
		{"datacontenttype", want.DataContentType(), got.DataContentType()},
		{"data", string(want.Data()), string(got.Data())},
	}
	for _, a := range attrs {
		if a.want != a.got {
			t.Errorf("%s: want %q, got %q", a.name, a.want, a.got)
		}
	}
	if !want.Time().Equal(got.Time()) {
		t.Errorf("time: want %v, got %v", want.Time(), got.Time())
	}
}

func TestFromHTTPModes(t *testing.T) {
	ev := mustNew(t, CardStatusChanged)
	bh, bb := binaryRequest(ev)
	sh, sb := structuredRequest(t, ev)

	fromBinary, err := FromHTTP(context.Background(), bh, bb)
	if err != nil {
		t.Fatalf("binary: want nil error, got %v", err)
	}
	fromStructured, err := FromHTTP(context.Background(), sh, sb)
	if err != nil {
		t.Fatalf("structured: want nil error, got %v", err)
	}
	sameEvent(t, ev, fromBinary)
	sameEvent(t, fromBinary, fromStructured)
}

func TestFromHTTPRejects(t *testing.T) {
	ev := mustNew(t, KioskHeartbeat)
	bh, bb := binaryRequest(ev)

	unknownType := bh.Clone()
	unknownType.Set("Ce-Type", "cn.sscard.nope.v1")
	badTime := bh.Clone()
	badTime.Set("Ce-Time", "yesterday")

	tests := []struct {
		name           string
		h              http.Header
		body           []byte
		wantNotCE      bool // else want *ValidationError
		wantValidField string
	}{
		{"plain JSON", http.Header{"Content-Type": {"application/json"}}, bb, true, ""},
		{"no headers", http.Header{}, bb, true, ""},
		{"batch", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, []byte("[]"), true, ""},
		{"unknown spec version", func() http.Header { h := bh.Clone(); h.Set("Ce-Specversion", "9.9"); return h }(), bb, true, ""},
		{"unknown type", unknownType, bb, false, "type"},
		{"unparsable ce-time", badTime, bb, false, "event"},
		{"binary without body", bh, nil, false, "data"},
		{"malformed structured", http.Header{"Content-Type": {"application/cloudevents+json"}}, []byte(`{"specversion":`), false, "event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromHTTP(context.Background(), tc.h, tc.body)
			if tc.wantNotCE {
				if !errors.Is(err, ErrNotCloudEvent) {
					t.Errorf("want ErrNotCloudEvent, got %T %v", err, err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want *ValidationError, got %T %v", err, err)
			}
			if _, ok := verr.Fields[tc.wantValidField]; !ok {
				t.Errorf("want field %q reported, got %v", tc.wantValidField, verr.Fields)
			}
		})
	}
}

func TestIsCloudEvent(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want bool
	}{
		{"binary", http.Header{"Ce-Specversion": {"1.0"}, "Content-Type": {"application/json"}}, true},
		{"structured", http.Header{"Content-Type": {"application/cloudevents+json"}}, true},
		{"structured with parameters", http.Header{"Content-Type": {"Application/CloudEvents+JSON; charset=UTF-8"}}, true},
		{"batch", http.Header{"Content-Type": {"application/cloudevents-batch+json"}}, false},
		{"plain JSON", http.Header{"Content-Type": {"application/json"}}, false},
		{"nothing", http.Header{}, false},
	}
	for _, tc := range tests {
		if got := IsCloudEvent(tc.h); got != tc.want {
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, got)
		}
	}
}

type captured struct {
	header http.Header
	body   []byte
}

func TestSenderBinaryMode(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []captured
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, captured{r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	s, err := NewSender(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := mustNew(t, KioskHeartbeat)
	if err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("Send: want nil error, got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 1 {
		t.Fatalf("want 1 request, got %d", len(reqs))
	}
	got := reqs[0]
	headers := []struct{ name, want string }{
		{"Ce-Specversion", "1.0"},
		{"Ce-Type", string(KioskHeartbeat)},
		{"Ce-Source", ev.Source()},
		{"Ce-Id", ev.ID()},
		{"Ce-Subject", ev.Subject()},
		{"Content-Type", "application/json"},
	}
	for _, hd := range headers {
		if v := got.header.Get(hd.name); v != hd.want {
			t.Errorf("header %s: want %q, got %q", hd.name, hd.want, v)
		}
	}
	if !bytes.Equal(got.body, ev.Data()) {
		t.Errorf("body: want %s, got %s", ev.Data(), got.body)
	}

	// What was sent must come back as the same event.
	back, err := FromHTTP(context.Background(), got.header, got.body)
	if err != nil {
		t.Fatalf("FromHTTP of sent request: want nil error, got %v", err)
	}
	sameEvent(t, ev, back)
}

func TestSenderErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broker down", http.StatusInternalServerError)
	}))
	s, err := NewSender(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ev := mustNew(t, SMSDelivered)

	err = s.Send(context.Background(), ev)
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("500: want *SendError, got %T %v", err, err)
	}
	if se.StatusCode != http.StatusInternalServerError {
		t.Errorf("500: want StatusCode 500, got %d", se.StatusCode)
	}

	srv.Close()
	err = s.Send(context.Background(), ev)
	if !errors.As(err, &se) {
		t.Fatalf("closed server: want *SendError, got %T %v", err, err)
	}
	if se.StatusCode != 0 {
		t.Errorf("closed server: want StatusCode 0, got %d", se.StatusCode)
	}
}

func TestSenderRefusesInvalidEvent(t *testing.T) {
	var hit atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer srv.Close()
	s, err := NewSender(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := mustNew(t, KioskHeartbeat)
	ev.SetType("cn.sscard.nope.v1")
	var verr *ValidationError
	if err := s.Send(context.Background(), ev); !errors.As(err, &verr) {
		t.Errorf("want *ValidationError, got %T %v", err, err)
	}
	if hit.Load() {
		t.Errorf("want no request for an invalid event, got one")
	}
}

func TestNewSenderURL(t *testing.T) {
	tests := []struct {
		url    string
		wantOK bool
	}{
		{"http://broker-ingress.knative-eventing.svc.cluster.local/sscard/default", true},
		{"https://gateway:8080/function/kiosk", true},
		{"/relative/path", false},
		{"ftp://host/x", false},
		{"http://", false},
		{"://bad", false},
	}
	for _, tc := range tests {
		_, err := NewSender(tc.url, nil)
		if got := err == nil; got != tc.wantOK {
			t.Errorf("NewSender(%q): want ok=%v, got err %v", tc.url, tc.wantOK, err)
		}
	}
}
