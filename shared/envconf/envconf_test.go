package envconf

import (
	"strings"
	"testing"
	"time"
)

func TestEnv_TypedValuesAndErrors(t *testing.T) {
	e := New([]string{"a=90", "b=1m30s", "c=nope", "n=7", "big=1000", "flag=true", "empty=", "a=5"})
	if got := e.Duration("a", 0); got != 5*time.Second {
		t.Errorf("later entry wins: want 5s, got %v", got)
	}
	if got := e.Duration("b", 0); got != 90*time.Second {
		t.Errorf("want 90s, got %v", got)
	}
	if got := e.Duration("empty", 3*time.Second); got != 3*time.Second {
		t.Errorf("empty means default: want 3s, got %v", got)
	}
	if got := e.Int("n", 0, 0, 10); got != 7 {
		t.Errorf("want 7, got %d", got)
	}
	if !e.Bool("flag", false) {
		t.Error("want true")
	}
	if e.Err() != nil {
		t.Fatalf("want no error yet, got %v", e.Err())
	}
	e.Duration("c", 0)
	e.Int("big", 0, 0, 10)
	err := e.Err()
	if err == nil || !strings.Contains(err.Error(), `c="nope"`) || !strings.Contains(err.Error(), `big="1000"`) {
		t.Errorf("want both bad variables named, got %v", err)
	}
}

func TestDuration_WatchdogSyntax(t *testing.T) {
	for in, want := range map[string]time.Duration{"10": 10 * time.Second, "1m30s": 90 * time.Second, "0": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: want %v, got %v %v", in, want, got, err)
		}
	}
	for _, bad := range []string{"-1", "ten", "-3s"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
