// Command edge-bridge is the persistent daemon on each kiosk. This first cut reports the
// kiosk's heartbeat to the platform as CloudEvents and keeps them in an on-disk spool
// while the network or the platform is down, sending them in order when it returns.
// Card reading over PC/SC arrives with the card issues.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/gm"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

func main() {
	var (
		listen   = flag.String("listen", "127.0.0.1:8090", "status endpoint address")
		gateway  = flag.String("gateway", "http://127.0.0.1:8080", "platform gateway base URL")
		kioskID  = flag.String("kiosk-id", "", "this kiosk's id (required)")
		spoolDir = flag.String("spool", ".state/run/edge-bridge", "directory for events waiting to be sent")
		interval = flag.Duration("interval", 30*time.Second, "heartbeat interval")
	)
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "edge-bridge")
	if err := gm.SelfTest(); err != nil {
		log.Error("SM2/SM3/SM4 self-test failed; refusing to start", "error", err.Error())
		os.Exit(1)
	}
	if *kioskID == "" {
		log.Error("-kiosk-id is required")
		os.Exit(2)
	}
	sender, err := events.NewSender(*gateway+"/broker/events", &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		log.Error("bad -gateway", "error", err.Error())
		os.Exit(2)
	}
	sp, err := openSpool(*spoolDir)
	if err != nil {
		log.Error("spool", "error", err.Error())
		os.Exit(1)
	}
	b := &bridge{kioskID: *kioskID, sender: sender, spool: sp, log: log}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "error", err.Error())
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.HandlerFunc(b.status), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Info("edge-bridge started", "kiosk_id", *kioskID, "status", "http://"+l.Addr().String()+"/status")
	b.loop(ctx, *interval)
	_ = srv.Shutdown(context.Background())
	log.Info("edge-bridge stopped")
}

type bridge struct {
	kioskID string
	sender  *events.Sender
	spool   *spool
	log     *slog.Logger

	mu       sync.Mutex
	lastSent time.Time
	lastErr  string
}

func (b *bridge) loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick spools a fresh heartbeat, then sends the spool oldest first and stops at the first
// failure, so events reach the platform in the order they happened.
func (b *bridge) tick(ctx context.Context) {
	ev, err := events.New(events.KioskHeartbeat, "/kiosks/"+b.kioskID, b.kioskID, events.KioskHeartbeatData{
		KioskID: b.kioskID, At: time.Now().UTC().Truncate(time.Millisecond), Status: events.KioskStatusOK,
		ReaderPresent: false, Version: version, QueuedEvents: b.spool.len(),
	})
	if err != nil {
		b.log.Error("heartbeat", "error", err.Error())
		return
	}
	if err := b.spool.put(ev); err != nil {
		b.log.Error("spool write", "error", err.Error())
	}
	sent, err := b.spool.drain(ctx, b.sender.Send)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.lastErr = err.Error()
		b.log.Warn("platform unreachable; events kept", "queued", b.spool.len(), "error", err.Error())
		return
	}
	b.lastErr = ""
	b.lastSent = time.Now()
	if sent > 1 {
		b.log.Info("sent queued events", "count", sent)
	}
}

func (b *bridge) status(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kioskId": b.kioskID, "version": version, "queuedEvents": b.spool.len(),
		"lastSentAt": b.lastSent, "lastError": b.lastErr, "online": b.lastErr == "" && !b.lastSent.IsZero(),
	})
}
