package smgp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/link"
	"github.com/sscard/platform/shared/sms/smgp"
)

const account, secret = "10990001", "telecom-secret"

func start(t *testing.T) *smssim.Sim {
	t.Helper()
	s, err := smssim.StartSMGP("127.0.0.1:0", map[string]string{account: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(s *smssim.Sim, sec string, onReport func(link.Report) error) *link.Client {
	return link.New(&smgp.Client{ClientID: account, Secret: sec, SrcTermID: "10659001"},
		link.Config{Addr: s.Addr(), Window: 8, Timeout: 2 * time.Second, Backoff: 5 * time.Millisecond,
			MaxBackoff: 50 * time.Millisecond, OnReport: onReport})
}

func split(t *testing.T, text string) []sms.Segment {
	t.Helper()
	segs, err := sms.Split(text, 7)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func TestSMGP_LoginSubmitLongAndReports(t *testing.T) {
	s := start(t)
	var le *link.LoginError
	bad := client(s, "wrong", nil)
	if err := bad.Connect(context.Background()); !errors.As(err, &le) || le.Status != smgp.StatusAuth {
		t.Fatalf("bad secret: %v", err)
	}
	var mu sync.Mutex
	reports := map[string]link.Report{}
	c := client(s, secret, func(r link.Report) error { mu.Lock(); reports[r.MsgID] = r; mu.Unlock(); return nil })
	defer c.Close()
	s.FailNumber("18900000002")
	long := strings.Repeat("您的社保卡已由EMS寄出。", 10)
	ids, err := c.Submit(context.Background(), "18900000001", split(t, long), true)
	if err != nil || len(ids) != 2 {
		t.Fatalf("long: %v %v", ids, err)
	}
	failed, err := c.Submit(context.Background(), "18900000002", split(t, "短信"), true)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Received()
	if len(got) != 2 || got[0].Text != long || got[0].Parts != 2 || got[0].Src != "10659001" || got[1].Text != "短信" {
		t.Fatalf("received %+v", got)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(reports)
		mu.Unlock()
		if n == 3 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if r := reports[ids[1]]; !r.Delivered || r.Dest != "18900000001" || r.At.IsZero() || len(ids[1]) != 20 {
		t.Errorf("delivered report %+v", r)
	}
	if r := reports[failed[0]]; r.Delivered || r.Stat != "UNDELIV" {
		t.Errorf("failed report %+v", r)
	}
	for deadline := time.Now().Add(3 * time.Second); s.ReportsAcked.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s.ReportsAcked.Load() != 3 || s.ReportsResent.Load() != 0 {
		t.Errorf("reports acknowledged %d, resent %d", s.ReportsAcked.Load(), s.ReportsResent.Load())
	}
}

func TestSMGP_ThrottleAndDropNothingLostOrDuplicated(t *testing.T) {
	s := start(t)
	c := client(s, secret, nil)
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Throttle(3)
	s.DropAfter(6)
	var wg sync.WaitGroup
	const n = 30
	for i := range n {
		wg.Go(func() {
			if _, err := c.Submit(context.Background(), fmt.Sprintf("181%08d", i), split(t, fmt.Sprint("通知", i)), false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, m := range s.Received() {
		seen[m.Dest]++
	}
	for i := range n {
		if d := fmt.Sprintf("181%08d", i); seen[d] != 1 {
			t.Errorf("%s received %d times", d, seen[d])
		}
	}
	if s.Throttled.Load() != 3 || c.Stats.Throttled.Load() != 3 || s.Logins.Load() != 2 {
		t.Fatalf("throttled %d/%d, logins %d", s.Throttled.Load(), c.Stats.Throttled.Load(), s.Logins.Load())
	}
}
