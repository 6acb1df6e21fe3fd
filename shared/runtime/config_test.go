package runtime

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadConfig_Defaults(t *testing.T) {
	c, err := LoadConfig("kiosk", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8082 || c.ExecTimeout != 10*time.Second || c.HealthcheckInterval != c.WriteTimeout ||
		c.Secrets.Dir != "/var/openfaas/secrets" || c.MaxInflight != 0 {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestLoadConfig_WatchdogStyleValues(t *testing.T) {
	c, err := LoadConfig("reconcile", []string{"function_port=9001", "exec_timeout=120", "write_timeout=121s",
		"read_timeout=2m1s", "healthcheck_interval=0", "max_inflight=4", "log_level=DEBUG", "secret_mount_path=/s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9001 || c.ExecTimeout != 120*time.Second || c.ReadTimeout != 121*time.Second ||
		c.HealthcheckInterval != 0 || c.MaxInflight != 4 || c.Secrets.Dir != "/s" {
		t.Errorf("want the given values, got %+v", c)
	}
}

func TestLoadConfig_Rejects(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"write_timeout=0", "write_timeout"},
		{"exec_timeout=30s", "exec_timeout"},
		{"function_port=70000", "function_port"},
		{"function_port=-1", "function_port"},
		{"log_level=loud", "log_level"},
		{"max_inflight=-1", "max_inflight"},
	} {
		_, err := LoadConfig("x", []string{tc.env})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error naming %s, got %v", tc.env, tc.want, err)
		}
	}
}

func TestLogWriter_FlushesOnTimeAndClose(t *testing.T) {
	var mu sync.Mutex
	var out strings.Builder
	w := newLogWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), 20*time.Millisecond)
	_, _ = w.Write([]byte("one\n"))
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	got := out.String()
	mu.Unlock()
	if got != "one\n" {
		t.Errorf("after the interval: want the line written, got %q", got)
	}
	_, _ = w.Write([]byte("two\n"))
	w.Close()
	if out.String() != "one\ntwo\n" {
		t.Errorf("after Close: want both lines, got %q", out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
