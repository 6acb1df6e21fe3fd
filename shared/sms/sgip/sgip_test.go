package sgip_test

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
	"github.com/sscard/platform/shared/sms/sgip"
)

const name, password = "sp-unicom", "unicom-secret"

func start(t *testing.T) *smssim.Sim {
	t.Helper()
	s, err := smssim.StartSGIP("127.0.0.1:0", map[string]string{name: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(s *smssim.Sim, pw string) *link.Client {
	return link.New(&sgip.Client{Node: 3020012345, LoginName: name, Password: pw, SPNumber: "10655001", CorpID: "12345"},
		link.Config{Addr: s.Addr(), Window: 8, Timeout: 2 * time.Second, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
}

func split(t *testing.T, text string) []sms.Segment {
	t.Helper()
	segs, err := sms.Split(text, 3)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func TestSGIP_BindSubmitLongAndReportsToOurReceiver(t *testing.T) {
	s := start(t)
	var le *link.LoginError
	if err := client(s, "wrong").Connect(context.Background()); !errors.As(err, &le) || le.Status != sgip.ResultBadLogin {
		t.Fatalf("bad password: %v", err)
	}
	var mu sync.Mutex
	reports := map[string]link.Report{}
	rcv := &sgip.Receiver{Name: "smg", Password: "smg-secret", OnReport: func(r link.Report) error {
		mu.Lock()
		defer mu.Unlock()
		reports[r.MsgID] = r
		return nil
	}}
	if err := rcv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	s.SetReportTo(smssim.SGIPReportTo{Addr: rcv.Addr(), Name: "smg", Password: "smg-secret"})
	s.FailNumber("13000000002")
	c := client(s, password)
	defer c.Close()
	long := strings.Repeat("您的社保卡已进入制卡环节。", 10)
	ids, err := c.Submit(context.Background(), "13000000001", split(t, long), true)
	if err != nil || len(ids) != 2 {
		t.Fatalf("long: %v %v", ids, err)
	}
	failed, err := c.Submit(context.Background(), "13000000002", split(t, "短信"), true)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Received()
	if len(got) != 2 || got[0].Text != long || got[0].Parts != 2 || got[0].Dest != "13000000001" || got[1].Text != "短信" {
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
	if r := reports[ids[0]]; !r.Delivered || r.Dest != "13000000001" {
		t.Errorf("delivered report for %s: %+v (all %v)", ids[0], r, reports)
	}
	if r := reports[failed[0]]; r.Delivered || r.Stat != "ERR:21" {
		t.Errorf("failed report %+v", r)
	}
}

func TestSGIP_ThrottleAndDropNothingLostOrDuplicated(t *testing.T) {
	s := start(t)
	c := client(s, password)
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Throttle(2)
	s.DropAfter(5)
	var wg sync.WaitGroup
	const n = 25
	for i := range n {
		wg.Go(func() {
			if _, err := c.Submit(context.Background(), fmt.Sprintf("186%08d", i), split(t, fmt.Sprint("通知", i)), false); err != nil {
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
		if d := fmt.Sprintf("186%08d", i); seen[d] != 1 {
			t.Errorf("%s received %d times", d, seen[d])
		}
	}
	if s.Throttled.Load() != 2 || c.Stats.Throttled.Load() != 2 || s.Logins.Load() != 2 {
		t.Fatalf("throttled %d/%d, logins %d", s.Throttled.Load(), c.Stats.Throttled.Load(), s.Logins.Load())
	}
}
