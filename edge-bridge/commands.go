package main

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/edge-bridge/upgrade"
	"github.com/sscard/platform/edge-bridge/uplink"
)

// Commands are kept in the state file from the moment they are fetched (the platform
// marks them delivered then) until their result is queued, in the same transaction that
// removes them; a crash in between runs them again at the next start. Ids of finished
// commands are kept so a command delivered twice runs once.
var (
	pendingCommands = []byte("commands/pending")
	doneCommands    = []byte("commands/done")
)

const upgradePendingKey = "upgrade.pending"

func isPermanent(err error) bool { return errors.Is(err, uplink.ErrPermanent) }

// pollCommands fetches new commands and runs them in order.
func (b *bridge) pollCommands(ctx context.Context) {
	cmds, err := b.client.Commands(ctx)
	if err != nil {
		b.log.Debug("commands not fetched", "error", err.Error())
		return
	}
	if len(cmds) == 0 {
		return
	}
	err = b.withTx(func(tx *bolt.Tx) error {
		p, err := tx.CreateBucketIfNotExists(pendingCommands)
		if err != nil {
			return err
		}
		d, err := tx.CreateBucketIfNotExists(doneCommands)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if d.Get([]byte(c.ID)) != nil || p.Get([]byte(c.ID)) != nil {
				continue
			}
			// key: fetch order, then id
			seq, _ := p.NextSequence()
			v, _ := json.Marshal(c)
			if err := p.Put(append(seqKey(seq), c.ID...), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.log.Error("store commands", "error", err.Error())
		return
	}
	b.resumeCommands(ctx)
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		k[i] = byte(seq)
		seq >>= 8
	}
	return k
}

// resumeCommands runs the stored commands oldest first.
func (b *bridge) resumeCommands(ctx context.Context) {
	for ctx.Err() == nil {
		var key []byte
		var c uplink.Command
		_ = b.st.DB.View(func(tx *bolt.Tx) error {
			if p := tx.Bucket(pendingCommands); p != nil {
				k, v := p.Cursor().First()
				if k != nil {
					key = append([]byte(nil), k...)
					return json.Unmarshal(v, &c)
				}
			}
			return nil
		})
		if key == nil {
			return
		}
		b.log.Info("running command", "command_id", c.ID, "command", c.Command)
		status, detail, after := b.execute(ctx, c)
		if status == "" { // the command finishes later (an upgrade awaiting its health check)
			if err := b.withTx(func(tx *bolt.Tx) error { return tx.Bucket(pendingCommands).Delete(key) }); err != nil {
				b.log.Error("command state", "error", err.Error())
				return
			}
		} else if err := b.finish(key, c.ID, status, detail); err != nil {
			b.log.Error("command result", "error", err.Error())
			return
		}
		if after != nil {
			after()
			return
		}
	}
}

// finish queues the command's result and forgets the command, in one transaction.
func (b *bridge) finish(key []byte, id, status, detail string, also ...func(*bolt.Tx) error) error {
	ev, err := newEvent(uplink.TypeCommandResult, map[string]string{"commandId": id, "status": status, "detail": detail})
	if err != nil {
		return err
	}
	return b.withTx(func(tx *bolt.Tx) error {
		if key != nil {
			if err := tx.Bucket(pendingCommands).Delete(key); err != nil {
				return err
			}
		}
		d, err := tx.CreateBucketIfNotExists(doneCommands)
		if err != nil {
			return err
		}
		if err := d.Put([]byte(id), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		for _, f := range also {
			if err := f(tx); err != nil {
				return err
			}
		}
		return b.events.AppendTx(tx, ev)
	})
}

// execute runs one command. It returns the result to report ("" when the result comes
// later) and what to do once the result is stored (restart, reboot).
func (b *bridge) execute(ctx context.Context, c uplink.Command) (status, detail string, after func()) {
	switch c.Command {
	case "pause", "resume":
		paused := c.Command == "pause"
		v := []byte("false")
		if paused {
			v = []byte("true")
		}
		if err := b.st.Put(pausedKey, v); err != nil {
			return "failed", err.Error(), nil
		}
		b.mu.Lock()
		b.paused = paused
		b.mu.Unlock()
		b.hub.send("service."+map[bool]string{true: "paused", false: "resumed"}[paused], map[string]any{})
		return "done", "service " + map[bool]string{true: "paused", false: "resumed"}[paused], nil
	case "self-check":
		sc := b.runSelfCheck(ctx)
		return "done", "self-check passed=" + map[bool]string{true: "true", false: "false"}[sc.Passed], nil
	case "sync-blacklist":
		v, err := b.bl.Sync(ctx, b.client)
		if err != nil {
			return "failed", err.Error(), nil
		}
		return "done", "blacklist at version " + itoa(v), nil
	case "upload-logs":
		n, err := b.shipLogs(true)
		if err != nil {
			return "failed", err.Error(), nil
		}
		return "done", itoa(int64(n)) + " log file(s) queued", nil
	case "restart-app":
		return "done", "restarting", b.requestRestart
	case "reboot":
		if b.cfg.rebootCmd == "" {
			return "failed", "no reboot hook configured (-reboot-cmd)", nil
		}
		return "done", "rebooting", func() {
			f := strings.Fields(b.cfg.rebootCmd)
			if out, err := exec.Command(f[0], f[1:]...).CombinedOutput(); err != nil {
				b.log.Error("reboot hook failed", "error", err.Error(), "output", string(out))
			}
		}
	case "upgrade":
		return b.startUpgrade(ctx, c)
	}
	return "failed", "unknown command " + c.Command, nil
}

// startUpgrade downloads and verifies the new build, records the pending upgrade and
// swaps it in; the new build reports the result once it is healthy (watchUpgrade).
func (b *bridge) startUpgrade(ctx context.Context, c uplink.Command) (string, string, func()) {
	var a upgrade.Args
	if err := json.Unmarshal(c.Args, &a); err != nil {
		return "failed", "bad upgrade arguments: " + err.Error(), nil
	}
	if a.Version == version {
		return "done", "already at version " + version, nil
	}
	staged, err := b.up.Stage(ctx, a)
	if err != nil {
		b.log.Warn("upgrade refused", "command_id", c.ID, "error", err.Error())
		return "failed", err.Error(), nil
	}
	p := upgrade.Pending{CommandID: c.ID, From: version, To: a.Version, Deadline: time.Now().Add(b.cfg.healthWindow)}
	v, _ := json.Marshal(p)
	if err := b.st.Put(upgradePendingKey, v); err != nil {
		return "failed", err.Error(), nil
	}
	if err := b.up.Swap(staged); err != nil {
		_ = b.st.Put(upgradePendingKey, nil)
		return "failed", err.Error(), nil
	}
	b.log.Info("upgrade swapped in; restarting into it", "from", version, "to", a.Version)
	return "", "", b.requestRestart
}

// watchUpgrade decides a pending upgrade: the build that starts after the swap keeps
// itself when it passes its self-check and the platform accepts its events before the
// deadline; otherwise (or after 3 failed starts) it puts the previous build back and
// restarts into it. The result goes to the platform either way.
func (b *bridge) watchUpgrade(ctx context.Context) {
	v, _ := b.st.Get(upgradePendingKey)
	if v == nil {
		return
	}
	var p upgrade.Pending
	if err := json.Unmarshal(v, &p); err != nil {
		_ = b.st.Put(upgradePendingKey, nil)
		return
	}
	if version != p.To { // the previous build is running again: the new one was rolled back
		_ = b.st.Put(upgradePendingKey, nil)
		return
	}
	p.Starts++
	v, _ = json.Marshal(p)
	_ = b.st.Put(upgradePendingKey, v)
	rollback := func(why string) {
		b.log.Error("upgrade rolled back", "to", p.From, "reason", why)
		if err := b.up.Rollback(); err != nil {
			b.log.Error("rollback failed", "error", err.Error())
			return
		}
		if err := b.finishUpgrade("failed", "version "+p.To+" "+why+"; rolled back to "+p.From, p); err != nil {
			b.log.Error("upgrade result", "error", err.Error())
		}
		b.requestRestart()
	}
	if p.Starts > 3 {
		rollback("did not stay up (started " + itoa(int64(p.Starts)) + " times)")
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		b.mu.Lock()
		sc := b.selfCheck
		b.mu.Unlock()
		if sc != nil && sc.Passed && b.fwd.State().LastSentAt.After(b.started) {
			if err := b.up.Commit(); err != nil {
				b.log.Warn("previous build not removed", "error", err.Error())
			}
			if err := b.finishUpgrade("done", "upgraded from "+p.From+" to "+p.To, p); err != nil {
				b.log.Error("upgrade result", "error", err.Error())
			}
			b.log.Info("upgrade kept", "version", p.To)
			return
		}
		if time.Now().After(p.Deadline) {
			rollback("did not report healthy in time")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// finishUpgrade queues the upgrade's result and clears the pending upgrade together.
func (b *bridge) finishUpgrade(status, detail string, p upgrade.Pending) error {
	return b.finish(nil, p.CommandID, status, detail, func(tx *bolt.Tx) error {
		return store.PutTx(tx, upgradePendingKey, nil)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
