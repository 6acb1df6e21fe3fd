package eventstream

import (
	"errors"
	"testing"
	"time"

	"github.com/sscard/platform/events"
)

func TestNamesAndSubjects(t *testing.T) {
	r := events.Route{Type: events.CardStatusChanged, Consumer: "loss-report"}
	if got := DurableName(r); got != "route_loss-report_cn_sscard_card_status_changed_v1" {
		t.Errorf("durable name: got %q", got)
	}
	if got := Subject(string(r.Type)); got != "events.cn.sscard.card.status.changed.v1" {
		t.Errorf("subject: got %q", got)
	}
	seen := map[string]bool{}
	for _, r := range events.Routes() {
		n := DurableName(r)
		if seen[n] {
			t.Errorf("two routes share the durable %s", n)
		}
		seen[n] = true
	}
	for sink, want := range map[string]bool{"nats://n:4222": true, "nats://a:4222,nats://b:4222": true, "tls://n:4222": true,
		"http://broker": false, "": false} {
		if IsNATS(sink) != want {
			t.Errorf("IsNATS(%q): want %v", sink, want)
		}
	}
}

func TestOutcomeOfADelivery(t *testing.T) {
	for status, want := range map[int]bool{400: true, 404: true, 422: true, 408: false, 429: false, 500: false, 503: false, 0: false} {
		if got := permanent(&events.SendError{StatusCode: status, Err: errors.New("x")}, status); got != want {
			t.Errorf("status %d: permanent want %v, got %v", status, want, got)
		}
	}
	if !permanent(&events.ValidationError{Fields: map[string]string{"id": "missing"}}, 0) {
		t.Error("an invalid event is permanent")
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 20: time.Minute} {
		if got := backoff(time.Second, time.Minute, n); got != want {
			t.Errorf("backoff after delivery %d: want %s, got %s", n, want, got)
		}
	}
}
