//go:build integration && linux

package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sscard/platform/edge-bridge/store"
	"github.com/sscard/platform/edge-bridge/uplink"
	"github.com/sscard/platform/tests/testenv"
)

// rssKB reads VmRSS or VmHWM (peak) of a process, in KiB.
func rssKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatalf("no %s", field)
	return 0
}

func benchEvents(n int) [][]byte {
	out := make([][]byte, n)
	now := time.Now().UTC()
	for i := range out {
		d, _ := json.Marshal(map[string]string{"cardNo": fmt.Sprintf("B%08d", i), "cardType": "3",
			"issueDate": "2024-03-15", "expiryDate": "2034-03-15"})
		out[i], _ = json.Marshal(uplink.Event{ID: uuid.NewString(), Type: uplink.TypeCardRead,
			Time: now.Add(time.Duration(i) * time.Microsecond).Format(time.RFC3339Nano), Data: d})
	}
	return out
}

// fill appends events in batches of the platform's batch size, one transaction each, and
// returns how long it took (the floor: what the store itself costs per event).
func fill(t *testing.T, path string, evs [][]byte) time.Duration {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q, _ := st.Queue("events")
	start := time.Now()
	for i := 0; i < len(evs); i += uplink.MaxBatch {
		if err := q.Append(evs[i:min(i+uplink.MaxBatch, len(evs))]...); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start)
}

// make bench-edge: the daemon drains a backlog of card reads to the real kiosk function
// (signed, enveloped batches of 500 through the gateway, recorded in Postgres); beside it,
// the same events written to and removed from a bbolt file with no network. RSS of the
// daemon idle, and its peak (VmHWM) over the burst.
func TestEdgeBridge_Bench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SSCARD_BENCH_EDGE"))
	if n <= 0 {
		t.Skip("set SSCARD_BENCH_EDGE=<events> (make bench-edge)")
	}
	evs := benchEvents(n)
	// Raw bbolt: append in batches of 500, then peek+ack in batches of 500.
	raw := filepath.Join(t.TempDir(), "raw.db")
	write := fill(t, raw, evs)
	st, _ := store.Open(raw)
	q, _ := st.Queue("events")
	start := time.Now()
	for {
		items, _ := q.Peek(uplink.MaxBatch)
		if len(items) == 0 {
			break
		}
		_ = q.Ack(items[len(items)-1].Seq)
	}
	drainRaw := time.Since(start)
	st.Close()

	p := startPlatform(t)
	keys, _ := enrolEdge(t, p, "edge-bench")
	d := startEdge(t, p, keys, "-heartbeat", "1h", "-command-poll", "1h", "-blacklist-sync", "1h")
	testenv.Eventually(t, 30*time.Second, "online and idle", func() bool {
		s, err := d.status()
		return err == nil && s.Uplink.Online && s.QueuedEvents == 0
	})
	time.Sleep(2 * time.Second)
	idle := rssKB(t, d.cmd.Process.Pid, "VmRSS")
	d.stop()
	fill(t, filepath.Join(d.dir, "state", "state.db"), evs)
	began := time.Now() // process start included: the drain begins as soon as it runs
	d.start()
	testenv.Eventually(t, 10*time.Minute, "backlog drained", func() bool {
		s, err := d.status()
		return err == nil && s.QueuedEvents == 0
	})
	drained := time.Since(began)
	peak := rssKB(t, d.cmd.Process.Pid, "VmHWM")
	after := rssKB(t, d.cmd.Process.Pid, "VmRSS")
	if got := p.kioskEvents(t, keys.kioskID, uplink.TypeCardRead); got != n {
		t.Errorf("platform recorded %d of %d card reads", got, n)
	}
	rate := float64(n) / drained.Seconds()
	rawW := float64(n) / write.Seconds()
	rawD := float64(n) / drainRaw.Seconds()
	t.Logf("bench-edge: %d events; drained to the kiosk function %.0f events/s (%.2fs, target >= 5000); raw bbolt append %.0f events/s, raw bbolt peek+ack %.0f events/s; drain/raw-append %.3f",
		n, rate, drained.Seconds(), rawW, rawD, rate/rawW)
	t.Logf("bench-edge: daemon RSS idle %.1f MiB, peak over the burst %.1f MiB, after %.1f MiB of which anonymous %.1f MiB, file-backed (binary, libraries, the mmapped bbolt file) %.1f MiB (target <= 30 MiB)",
		float64(idle)/1024, float64(peak)/1024, float64(after)/1024, float64(rssKB(t, d.cmd.Process.Pid, "RssAnon"))/1024,
		float64(rssKB(t, d.cmd.Process.Pid, "RssFile"))/1024)
}
