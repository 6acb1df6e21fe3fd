package cmpp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gocmpp "github.com/bigwhite/gocmpp"

	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/cmpp"
	"github.com/sscard/platform/shared/sms/link"
)

const account, secret = "901234", "s3cret-for-tests"

func start(t testing.TB) *smssim.Sim {
	t.Helper()
	s, err := smssim.StartCMPP("127.0.0.1:0", map[string]string{account: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func client(s *smssim.Sim, v byte, sec string, onReport func(link.Report) error) *link.Client {
	return link.New(&cmpp.Client{Account: account, Secret: sec, Version: v, SrcID: "106571234"},
		link.Config{Addr: s.Addr(), Window: 8, Timeout: 2 * time.Second, Backoff: 5 * time.Millisecond,
			MaxBackoff: 50 * time.Millisecond, OnReport: onReport})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 5s", what)
}

func TestCMPP_LoginGoodAndBadSecret(t *testing.T) {
	s := start(t)
	for _, v := range []byte{cmpp.V20, cmpp.V30} {
		good := client(s, v, secret, nil)
		if err := good.Connect(context.Background()); err != nil {
			t.Fatalf("v%x good secret: %v", v, err)
		}
		good.Close()
		bad := client(s, v, "wrong", nil)
		var le *link.LoginError
		_, err := bad.Submit(context.Background(), "13800138000", mustSplit(t, "x"), false)
		if !errors.As(err, &le) || le.Status != cmpp.StatusAuth {
			t.Fatalf("v%x bad secret: want login refused with status 3, got %v", v, err)
		}
		bad.Close()
	}
	if s.Logins.Load() != 2 || s.Refused.Load() != 2 || len(s.Received()) != 0 {
		t.Fatalf("logins %d refused %d received %d", s.Logins.Load(), s.Refused.Load(), len(s.Received()))
	}
}

func mustSplit(t *testing.T, text string) []sms.Segment {
	t.Helper()
	segs, err := sms.Split(text, 42)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func TestCMPP_SubmitShortAndLongReassembled(t *testing.T) {
	for _, v := range []byte{cmpp.V20, cmpp.V30} {
		s := start(t)
		c := client(s, v, secret, nil)
		defer c.Close()
		short := "有3张社保卡照片审核超期，请尽快审核。"
		long := strings.Repeat("您的社保卡已寄出，请注意查收。", 12) // 180 characters: 3 parts
		ids, err := c.Submit(context.Background(), "13800138000", mustSplit(t, short), false)
		if err != nil || len(ids) != 1 || ids[0] == "" {
			t.Fatalf("short: %v %v", ids, err)
		}
		ids, err = c.Submit(context.Background(), "13900139000", mustSplit(t, long), false)
		if err != nil || len(ids) != 3 {
			t.Fatalf("long: %v %v", ids, err)
		}
		got := s.Received()
		if len(got) != 2 || got[0].Text != short || got[0].Dest != "13800138000" || got[0].Src != "106571234" ||
			got[1].Text != long || got[1].Parts != 3 || strings.Join(got[1].MsgIDs, ",") != strings.Join(ids, ",") {
			t.Fatalf("v%x received: %+v", v, got)
		}
	}
}

func TestCMPP_ThrottledSubmitsAreRetried(t *testing.T) {
	s := start(t)
	c := client(s, cmpp.V30, secret, nil)
	defer c.Close()
	s.Throttle(4)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := c.Submit(context.Background(), fmt.Sprintf("138%08d", i), mustSplit(t, fmt.Sprint("通知", i)), false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(s.Received()); n != 10 || s.Throttled.Load() != 4 || c.Stats.Throttled.Load() != 4 {
		t.Fatalf("received %d, simulator throttled %d, client saw %d", n, s.Throttled.Load(), c.Stats.Throttled.Load())
	}
}

func TestCMPP_DroppedConnectionReconnectsNothingLostOrDuplicated(t *testing.T) {
	s := start(t)
	c := client(s, cmpp.V30, secret, nil)
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.DropAfter(7)
	var wg sync.WaitGroup
	const n = 40
	for i := range n {
		wg.Go(func() {
			if _, err := c.Submit(context.Background(), fmt.Sprintf("139%08d", i), mustSplit(t, fmt.Sprint("消息", i)), false); err != nil {
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
		if d := fmt.Sprintf("139%08d", i); seen[d] != 1 {
			t.Errorf("%s received %d times", d, seen[d])
		}
	}
	if s.Logins.Load() != 2 || c.Stats.Logins.Load() != 2 {
		t.Fatalf("want one reconnect: simulator logins %d, client logins %d", s.Logins.Load(), c.Stats.Logins.Load())
	}
}

func TestCMPP_DeliveryReports(t *testing.T) {
	s := start(t)
	var mu sync.Mutex
	got := map[string]link.Report{}
	c := client(s, cmpp.V30, secret, func(r link.Report) error {
		mu.Lock()
		defer mu.Unlock()
		got[r.MsgID] = r
		return nil
	})
	defer c.Close()
	s.FailNumber("13700137000")
	s.DelayReports(100 * time.Millisecond)
	ok, err := c.Submit(context.Background(), "13800138000", mustSplit(t, "您的社保卡已激活。"), true)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := c.Submit(context.Background(), "13700137000", mustSplit(t, "您的社保卡已激活。"), true)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both reports", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if r := got[ok[0]]; !r.Delivered || r.Stat != "DELIVRD" || r.Dest != "13800138000" || r.At.IsZero() {
		t.Errorf("delivered report: %+v", r)
	}
	if r := got[bad[0]]; r.Delivered || r.Stat != "UNDELIV" {
		t.Errorf("failed report: %+v", r)
	}
}

// gocmpp (an independent implementation) logs in to the simulator and submits: the
// simulator's wire format is the one other clients speak, not just ours.
func TestCMPP_GocmppClientAgainstSimulator(t *testing.T) {
	s := start(t)
	c := gocmpp.NewClient(gocmpp.V30)
	if err := c.Connect(s.Addr(), account, secret, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	content, _ := sms.Split("社保卡", 1)
	_, err := c.SendReqPkt(&gocmpp.Cmpp3SubmitReqPkt{PkTotal: 1, PkNumber: 1, MsgFmt: 8, MsgSrc: account, FeeType: "01",
		SrcId: "106571234", DestUsrTl: 1, DestTerminalId: []string{"13800138000"}, MsgLength: uint8(len(content[0].Data)),
		MsgContent: string(content[0].Data)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.RecvAndUnpackPkt(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := p.(*gocmpp.Cmpp3SubmitRspPkt); !ok || r.Result != 0 || r.MsgId == 0 {
		t.Fatalf("submit answer: %#v", p)
	}
	if got := s.Received(); len(got) != 1 || got[0].Text != "社保卡" {
		t.Fatalf("received %+v", got)
	}
	bad := gocmpp.NewClient(gocmpp.V30)
	if err := bad.Connect(s.Addr(), account, "nope", 2*time.Second); err == nil {
		t.Fatal("gocmpp login with a bad secret succeeded")
	}
}

// An idle link sends ACTIVE_TEST and stays up on the answers: no reconnect.
func TestCMPP_KeepAliveOnIdleLink(t *testing.T) {
	s := start(t)
	c := link.New(&cmpp.Client{Account: account, Secret: secret}, link.Config{Addr: s.Addr(), KeepAlive: 150 * time.Millisecond,
		Timeout: time.Second})
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two keep-alives", func() bool { return s.ActiveTests.Load() >= 2 })
	if _, err := c.Submit(context.Background(), "13800138000", mustSplit(t, "在线"), false); err != nil {
		t.Fatal(err)
	}
	if s.Logins.Load() != 1 || c.Stats.Logins.Load() != 1 {
		t.Fatalf("logins %d/%d: the idle link was not kept", s.Logins.Load(), c.Stats.Logins.Load())
	}
}

// A report the platform could not record is not acknowledged, and the gateway sends it again.
func TestCMPP_UnrecordedReportComesAgain(t *testing.T) {
	s := start(t)
	var mu sync.Mutex
	calls := 0
	var got []link.Report
	c := client(s, cmpp.V30, secret, func(r link.Report) error {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			return errors.New("database down")
		}
		got = append(got, r)
		return nil
	})
	defer c.Close()
	ids, err := c.Submit(context.Background(), "13800138000", mustSplit(t, "您的社保卡已寄出。"), true)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the report again, recorded", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || got[0].MsgID != ids[0] || !got[0].Delivered || s.ReportsResent.Load() != 1 {
		t.Fatalf("calls %d, reports %+v, resent %d", calls, got, s.ReportsResent.Load())
	}
	eventually(t, "acknowledged", func() bool { return s.ReportsAcked.Load() == 1 })
}
