// Command edge-bridge is the persistent daemon on each self-service kiosk. It reads social
// security cards through PC/SC, gives the kiosk's own UI a loopback-only API (card events
// as a server-sent event stream; actions forwarded to the functions as signed calls),
// reports heartbeats, self-checks, card reads and command results to the kiosk function,
// runs remote commands (pause, resume, restart, reboot, upgrade…), keeps a local copy of
// the blacklist, and keeps working offline: everything for the platform waits in a
// durable queue (bbolt) and drains in order when the platform is back.
package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/gm"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// config is the daemon's configuration (flags; see docs/edge-bridge.md).
type config struct {
	listen, gateway, kioskID, keyFile, keyID string
	serverSignKey, serverEncKey, upgradeKey  string
	stateDir, rebootCmd                      string
	envelope                                 bool
	heartbeat, commandPoll, blacklistSync    time.Duration
	healthWindow                             time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.listen, "listen", "127.0.0.1:8090", "local API address (loopback only)")
	flag.StringVar(&c.gateway, "gateway", "http://127.0.0.1:8080", "platform gateway base URL (functions at /function/<name>)")
	flag.StringVar(&c.kioskID, "kiosk-id", "", "this kiosk's id, its registered app id (required)")
	flag.StringVar(&c.keyFile, "key", "", "PEM file of this kiosk's SM2 private key (required)")
	flag.StringVar(&c.keyID, "key-id", "", "id of that key in the platform's caller registry (default: derived from the key, as enrolment does)")
	flag.StringVar(&c.serverSignKey, "server-sign-key", "", "PEM file of the platform's response-signing public key(s) (required)")
	flag.StringVar(&c.serverEncKey, "server-enc-key", "", "PEM file of the platform's envelope public key (enables envelopes)")
	flag.BoolVar(&c.envelope, "envelope", true, "envelope request bodies (SM2+SM4) when -server-enc-key is given")
	flag.StringVar(&c.upgradeKey, "upgrade-key", "", "PEM file of the upgrade signing public key (upgrades refused without it)")
	flag.StringVar(&c.stateDir, "state", ".state/run/edge-bridge", "directory for the state file and logs")
	flag.StringVar(&c.rebootCmd, "reboot-cmd", "", "command that reboots the host (the reboot command fails without it)")
	flag.DurationVar(&c.heartbeat, "heartbeat", 30*time.Second, "heartbeat interval")
	flag.DurationVar(&c.commandPoll, "command-poll", 30*time.Second, "how often to fetch commands")
	flag.DurationVar(&c.blacklistSync, "blacklist-sync", 5*time.Minute, "how often to sync the blacklist")
	flag.DurationVar(&c.healthWindow, "upgrade-health-window", 2*time.Minute, "time a new build has to report healthy")
	memLimit := flag.Int64("memory-limit", 16<<20, "soft limit of the Go heap in bytes (kiosks are small machines)")
	flag.Parse()
	// A kiosk shares a small machine with its UI: collect sooner rather than grow the heap
	// during a backlog drain (soft limit; it never fails an allocation).
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(*memLimit)

	// The binary's path is taken once at start: after an upgrade swap, the running
	// process's own link may name the previous build.
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge-bridge:", err)
		os.Exit(1)
	}
	code, restart := run(c, exe)
	if restart {
		if err := reexec(exe); err != nil {
			fmt.Fprintln(os.Stderr, "edge-bridge: restart:", err)
			os.Exit(1)
		}
	}
	os.Exit(code)
}

// run runs the daemon until a signal or a restart command; restart asks main to start
// the binary again in place.
func run(c config, exe string) (code int, restart bool) {
	if err := os.MkdirAll(filepath.Join(c.stateDir, "logs"), 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "edge-bridge:", err)
		return 1, false
	}
	logs := &dailyLog{dir: filepath.Join(c.stateDir, "logs")}
	defer logs.Close()
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(os.Stderr, logs), nil)).With("component", "edge-bridge")
	fail := func(msg string, err error) (int, bool) {
		log.Error(msg, "error", err.Error())
		return 1, false
	}
	if err := gm.SelfTest(); err != nil {
		return fail("SM2/SM3/SM4 self-test failed; refusing to start", err)
	}
	if c.kioskID == "" || c.keyFile == "" || c.serverSignKey == "" {
		log.Error("-kiosk-id, -key and -server-sign-key are required")
		return 2, false
	}
	caller, err := newCaller(c)
	if err != nil {
		return fail("configuration", err)
	}
	var upKey *ecdsa.PublicKey
	if c.upgradeKey != "" {
		b, err := os.ReadFile(c.upgradeKey)
		if err == nil {
			upKey, err = gm.ParsePublicKeyPEM(b)
		}
		if err != nil {
			return fail("-upgrade-key", err)
		}
	}
	if err := checkLoopback(c.listen); err != nil {
		return fail("-listen", err)
	}
	st, err := store.Open(filepath.Join(c.stateDir, "state.db"))
	if err != nil {
		return fail("state file", err)
	}
	defer st.Close()
	b, err := newBridge(c, st, caller, upKey, exe, logs, log)
	if err != nil {
		return fail("start", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fail("listen", err)
	}
	srv := &http.Server{Handler: b.api(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Info("edge-bridge started", "kiosk_id", c.kioskID, "version", version, "api", "http://"+l.Addr().String())
	restart = b.run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	log.Info("edge-bridge stopped", "restart", restart)
	return 0, restart
}

// newCaller builds signed clients for the platform's functions under the kiosk's key.
func newCaller(c config) (func(string) *callsign.Client, error) {
	kb, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, err
	}
	key, err := gm.ParsePrivateKeyPEM(kb)
	if err != nil {
		return nil, fmt.Errorf("-key: %w", err)
	}
	keyID := c.keyID
	if keyID == "" {
		keyID = gm.KeyID(&key.PublicKey)
	}
	sb, err := os.ReadFile(c.serverSignKey)
	if err != nil {
		return nil, err
	}
	signKeys := map[string]*ecdsa.PublicKey{}
	for rest := sb; len(rest) > 0; {
		pub, next, err := nextPublicKey(rest)
		if err != nil {
			return nil, fmt.Errorf("-server-sign-key: %w", err)
		}
		if pub == nil {
			break
		}
		signKeys[gm.KeyID(pub)] = pub
		rest = next
	}
	if len(signKeys) == 0 {
		return nil, errors.New("-server-sign-key: no public key")
	}
	var enc *ecdsa.PublicKey
	if c.serverEncKey != "" {
		eb, err := os.ReadFile(c.serverEncKey)
		if err != nil {
			return nil, err
		}
		if enc, err = gm.ParsePublicKeyPEM(eb); err != nil {
			return nil, fmt.Errorf("-server-enc-key: %w", err)
		}
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	return func(function string) *callsign.Client {
		return &callsign.Client{HTTP: hc, BaseURL: c.gateway + "/function/" + function, Function: function,
			AppID: c.kioskID, KeyID: keyID, Key: key, ServerSignKeys: signKeys, ServerEncKey: enc,
			Envelope: c.envelope && enc != nil}
	}, nil
}

// checkLoopback refuses a local API address that is not a loopback address: the API
// serves the kiosk's own UI and holds the holder's data.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}

// nextPublicKey parses the first PEM public key of text and returns the rest (nil, nil
// at the end).
func nextPublicKey(text []byte) (*ecdsa.PublicKey, []byte, error) {
	blk, rest := pem.Decode(text)
	if blk == nil {
		return nil, nil, nil
	}
	pub, err := gm.ParsePublicKeyPEM(pem.EncodeToMemory(blk))
	return pub, rest, err
}
