package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/sscard/platform/edge-bridge/blacklist"
	"github.com/sscard/platform/edge-bridge/reader"
	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/edge-bridge/upgrade"
	"github.com/sscard/platform/edge-bridge/uplink"
	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/sscard"
)

// bridge is the running daemon.
type bridge struct {
	cfg     config
	st      *store.Store
	events  *store.Queue // events for POST /kiosks/{id}/events, in order
	uploads *store.Queue // log files for POST /kiosks/{id}/logs
	dead    *store.Queue // events the platform refused as invalid
	client  *uplink.Client
	fwd     *uplink.Forwarder
	bl      *blacklist.List
	up      *upgrade.Upgrader
	watcher *reader.Watcher
	logs    *dailyLog
	log     *slog.Logger
	hub     *hub
	started time.Time

	restart chan struct{}

	mu        sync.Mutex
	paused    bool
	cards     map[string]*inserted // by reader
	selfCheck *selfCheckData
}

// inserted is the card in one reader, as read. Its holder data stays in this process.
type inserted struct {
	readID       string
	card         *sscard.Card
	at           time.Time
	faceVerified bool
}

const pausedKey = "service.paused"

func newBridge(c config, st *store.Store, caller func(string) *callsign.Client, upKey *ecdsa.PublicKey,
	exe string, logs *dailyLog, log *slog.Logger) (*bridge, error) {
	b := &bridge{cfg: c, st: st, logs: logs, log: log, hub: newHub(), started: time.Now(),
		restart: make(chan struct{}, 1), cards: map[string]*inserted{}}
	var err error
	if b.events, err = st.Queue("events"); err != nil {
		return nil, err
	}
	if b.uploads, err = st.Queue("uploads"); err != nil {
		return nil, err
	}
	if b.dead, err = st.Queue("refused"); err != nil {
		return nil, err
	}
	b.client = &uplink.Client{KioskID: c.kioskID, Caller: caller}
	b.fwd = &uplink.Forwarder{Queue: b.events, Dead: b.dead, Post: b.client.PostEvents, Log: log}
	b.bl = &blacklist.List{S: st}
	b.up = &upgrade.Upgrader{Exe: exe, Key: upKey}
	b.watcher = &reader.Watcher{OnEvent: b.onCard, Log: log}
	if v, _ := st.Get(pausedKey); string(v) == "true" {
		b.paused = true
	}
	return b, nil
}

// enqueue queues one event for the platform.
func (b *bridge) enqueue(typ string, data any) error {
	v, err := newEvent(typ, data)
	if err != nil {
		return err
	}
	return b.events.Append(v)
}

func newEvent(typ string, data any) ([]byte, error) {
	d, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(uplink.Event{ID: uuid.NewString(), Type: typ,
		Time: time.Now().UTC().Format(time.RFC3339Nano), Data: d})
}

// run runs the daemon's loops until ctx ends (false) or a restart is asked for (true).
func (b *bridge) run(parent context.Context) bool {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	goLoop := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	goLoop(b.watcher.Run)
	goLoop(b.fwd.Run)
	goLoop(b.drainUploads)
	b.runSelfCheck(ctx)
	goLoop(b.watchUpgrade)
	goLoop(b.every(b.cfg.heartbeat, b.heartbeat))
	goLoop(b.every(b.cfg.commandPoll, b.pollCommands))
	goLoop(b.every(b.cfg.blacklistSync, b.syncBlacklist))
	goLoop(b.every(time.Hour, func(ctx context.Context) { b.shipLogs(false) }))
	b.resumeCommands(ctx)

	restart := false
	select {
	case <-parent.Done():
	case <-b.restart:
		restart = true
	}
	cancel()
	wg.Wait()
	b.hub.closeAll()
	return restart
}

// every runs f now and then every d until ctx ends.
func (b *bridge) every(d time.Duration, f func(context.Context)) func(context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			f(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}

func (b *bridge) requestRestart() {
	select {
	case b.restart <- struct{}{}:
	default:
	}
}

func (b *bridge) isPaused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paused
}

// onCard handles one reader event: the UI hears of it at once, the platform gets the
// card's public data (never the holder's name or number) through the queue.
func (b *bridge) onCard(e reader.Event) {
	switch e.Kind {
	case reader.CardRead:
		in := &inserted{readID: uuid.NewString(), card: e.Card, at: e.At}
		b.mu.Lock()
		b.cards[e.Reader] = in
		paused := b.paused
		b.mu.Unlock()
		blocked, entry, version, err := b.bl.Check(e.Card.CardNo)
		if err != nil {
			b.log.Error("blacklist check", "error", err.Error())
		}
		pub := e.Card.Public()
		if err := b.enqueue(uplink.TypeCardRead, map[string]string{"cardNo": pub.CardNo, "cardType": pub.CardType,
			"issueDate": pub.IssueDate, "expiryDate": pub.ExpiryDate}); err != nil {
			b.log.Error("queue card read", "error", err.Error())
		}
		b.log.Info("card read", "reader", e.Reader, "read_id", in.readID, "blocked", blocked)
		b.hub.send("card.read", cardView(e.Reader, in, blocked, entry, version, paused))
	case reader.ReadFailed:
		b.mu.Lock()
		delete(b.cards, e.Reader)
		b.mu.Unlock()
		b.log.Warn("card could not be read", "reader", e.Reader, "error", e.Err.Error())
		b.hub.send("card.read-failed", map[string]string{"reader": e.Reader, "error": e.Err.Error()})
	case reader.CardGone:
		b.mu.Lock()
		delete(b.cards, e.Reader)
		b.mu.Unlock()
		b.hub.send("card.removed", map[string]string{"reader": e.Reader})
	}
}

// heartbeat queues a heartbeat with the components' status.
func (b *bridge) heartbeat(ctx context.Context) {
	comp := b.components()
	status := "ok"
	switch {
	case comp["reader"] == string(reader.Fault) || comp["disk"] == "fault":
		status = "fault"
	case comp["reader"] != "ok" || b.isPaused():
		status = "degraded"
	}
	q := b.events.Len()
	if err := b.enqueue(uplink.TypeHeartbeat, map[string]any{"status": status, "version": version,
		"queuedEvents": q, "components": comp}); err != nil {
		b.log.Error("queue heartbeat", "error", err.Error())
	}
}

func (b *bridge) components() map[string]string {
	network := "ok"
	if !b.fwd.State().Online {
		network = "fault"
	}
	return map[string]string{"reader": string(b.watcher.Status().Health), "printer": "absent",
		"network": network, "disk": diskHealth(b.cfg.stateDir)}
}

// syncBlacklist brings the local blacklist up to date (errors leave the old copy).
func (b *bridge) syncBlacklist(ctx context.Context) {
	v, err := b.bl.Sync(ctx, b.client)
	if err != nil {
		b.log.Warn("blacklist sync failed; the local copy stays", "error", err.Error())
		return
	}
	b.log.Debug("blacklist synced", "version", v)
}

// drainUploads sends queued log files one at a time, oldest first.
func (b *bridge) drainUploads(ctx context.Context) {
	gap := time.Duration(0)
	for ctx.Err() == nil {
		if gap > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(gap):
			case <-b.uploads.Notify():
			}
		}
		items, err := b.uploads.Peek(1)
		if err != nil || len(items) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-b.uploads.Notify():
			}
			continue
		}
		var u logUpload
		if err := json.Unmarshal(items[0].Value, &u); err != nil {
			_ = b.uploads.Ack(items[0].Seq)
			continue
		}
		err = b.client.PostLog(ctx, u.Date, u.Gzip)
		if err != nil && !isPermanent(err) {
			gap = min(2*gap+time.Second, time.Minute)
			continue
		}
		if err != nil {
			b.log.Error("platform refused a log upload; dropped", "date", u.Date, "error", err.Error())
		}
		_ = b.uploads.Ack(items[0].Seq)
		gap = 0
	}
}

// withTx runs f in one state-file transaction.
func (b *bridge) withTx(f func(tx *bolt.Tx) error) error { return b.st.DB.Update(f) }

func (b *bridge) String() string { return fmt.Sprintf("edge-bridge %s (%s)", b.cfg.kioskID, version) }
