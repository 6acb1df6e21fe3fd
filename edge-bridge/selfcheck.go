package main

import (
	"context"
	"time"

	"github.com/sscard/platform/edge-bridge/reader"
	"github.com/sscard/platform/edge-bridge/uplink"
	"github.com/sscard/platform/shared/gm"
)

type selfCheckItem struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

type selfCheckData struct {
	Passed bool            `json:"passed"`
	Items  []selfCheckItem `json:"items"`
}

// runSelfCheck checks what the kiosk needs to serve, keeps the result for the status and
// the upgrade health check, and queues it for the platform. The reader is given up to 3 s
// to appear (PC/SC needs a moment after start).
func (b *bridge) runSelfCheck(ctx context.Context) *selfCheckData {
	var items []selfCheckItem
	add := func(name string, ok bool, detail string) {
		items = append(items, selfCheckItem{Name: name, OK: ok, Detail: detail})
	}
	err := gm.SelfTest()
	add("crypto", err == nil, errText(err, "SM2/SM3/SM4 known-answer tests"))
	err = b.st.Put("selfcheck.probe", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	add("state-file", err == nil, errText(err, "writable"))
	disk := diskHealth(b.cfg.stateDir)
	add("disk", disk != "fault", "free space "+disk)
	deadline := time.Now().Add(3 * time.Second)
	st := b.watcher.Status()
	for st.Health != reader.OK && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		st = b.watcher.Status()
	}
	pcsc := st.Health != reader.Fault
	detail := "PC/SC service answers"
	if !pcsc {
		detail = "PC/SC service unavailable: " + st.Error
	}
	if !reader.Built {
		detail = "this build has no PC/SC support"
	}
	add("pcsc", pcsc, detail)
	add("reader", st.Health == reader.OK, itoa(int64(len(st.Readers)))+" reader(s) attached")
	add("clock", time.Now().Year() >= 2024, time.Now().UTC().Format(time.RFC3339))
	add("upgrade-key", b.up.Key != nil, map[bool]string{true: "configured", false: "not configured: upgrades refused"}[b.up.Key != nil])
	sc := &selfCheckData{Passed: true, Items: items}
	for _, it := range items {
		if !it.OK && it.Name != "upgrade-key" && it.Name != "reader" {
			sc.Passed = false
		}
	}
	b.mu.Lock()
	b.selfCheck = sc
	b.mu.Unlock()
	if err := b.enqueue(uplink.TypeSelfCheck, sc); err != nil {
		b.log.Error("queue self-check", "error", err.Error())
	}
	b.log.Info("self-check", "passed", sc.Passed)
	return sc
}

func errText(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}
