// Package runtime runs a templates-sdk handler as an HTTP server under the of-watchdog
// contract (http mode): the watchdog forks this process once and proxies to it, and the
// same binary runs bare behind the local gateway.
package runtime

import (
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/secrets"
)

// Config is the process configuration, a pure function of the environment.
//
// Variables (defaults in brackets):
//
//	function_port         port this process listens on [8082, the watchdog's upstream_url];
//	                      not "port", which the watchdog itself reads in the same container
//	function_host         address to bind [all]; the local gateway binds 127.0.0.1
//	read_timeout          HTTP read timeout [10s]
//	write_timeout         HTTP write timeout [10s]
//	exec_timeout          deadline of one invocation; 504 after it [10s]; 0 disables
//	healthcheck_interval  after SIGTERM, how long /_/health reports unhealthy before the
//	                      server drains [= write_timeout], so load balancers stop sending
//	max_inflight          concurrent invocations before 429 [0 = unlimited]
//	max_body_bytes        request body limit, 413 beyond [8388608]
//	secret_mount_path     where secrets are read [/var/openfaas/secrets]
//	log_level             debug|info|warn|error [info]
//	readiness_interval    how often /_/ready re-checks Postgres/Redis/S3/NATS [2s]
//	debug_pprof_addr      loopback address for Go profiles (/debug/pprof/) [off]; for
//	                      measuring an instance, never exposed through the gateway
//
// All durations accept Go syntax ("10s") or plain seconds ("10"), as of-watchdog does.
type Config struct {
	Name                string
	Host                string
	Port                int
	ReadTimeout         time.Duration
	WriteTimeout        time.Duration
	ExecTimeout         time.Duration
	HealthcheckInterval time.Duration
	MaxInflight         int
	MaxBodyBytes        int64
	Secrets             secrets.Reader
	LogLevel            slog.Level
	PprofAddr           string
	ReadinessInterval   time.Duration
}

// LoadConfig reads Config for function name.
func LoadConfig(name string, environ []string) (Config, error) {
	e := envconf.New(environ)
	c := Config{
		Name:         name,
		Host:         e.String("function_host", ""),
		Port:         e.Int("function_port", 8082, 0, 65535), // 0: any free port (tests)
		ReadTimeout:  e.Duration("read_timeout", 10*time.Second),
		WriteTimeout: e.Duration("write_timeout", 10*time.Second),
		ExecTimeout:  e.Duration("exec_timeout", 10*time.Second),
		MaxInflight:  e.Int("max_inflight", 0, 0, 1_000_000),
		MaxBodyBytes: int64(e.Int("max_body_bytes", 8<<20, 1024, 1<<30)),
		Secrets:      secrets.Reader{Dir: e.String("secret_mount_path", secrets.DefaultMountPath)},
	}
	c.HealthcheckInterval = e.Duration("healthcheck_interval", c.WriteTimeout)
	c.PprofAddr = e.String("debug_pprof_addr", "")
	c.ReadinessInterval = e.Duration("readiness_interval", 2*time.Second)
	if c.ReadinessInterval <= 0 {
		e.Fail("readiness_interval", "must be positive")
	}
	if c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil || !net.ParseIP(host).IsLoopback() {
			e.Fail("debug_pprof_addr", "want a loopback host:port (profiles reveal internals)")
		}
	}
	if c.WriteTimeout == 0 {
		e.Fail("write_timeout", "must be positive (of-watchdog refuses 0 too)")
	}
	if c.ReadTimeout == 0 {
		e.Fail("read_timeout", "must be positive")
	}
	if c.ExecTimeout > c.WriteTimeout {
		// The response could not be written after the invocation finished.
		e.Fail("exec_timeout", "must not exceed write_timeout")
	}
	switch strings.ToLower(e.String("log_level", "info")) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		e.Fail("log_level", "want debug, info, warn or error")
	}
	return c, e.Err()
}
