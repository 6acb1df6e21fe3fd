// Command sms measures the sustained submit rate through our CMPP client (shared/sms/link
// + cmpp: window, answers matched by sequence) against gocmpp's raw submit loops, to the
// same simulated ISMG in the same run: gocmpp stop-and-wait (send, wait for the answer:
// its client's own pattern) and gocmpp pipelined (one goroutine writes submits, one reads
// answers, at most -window unanswered, i.e. the same window as ours). The figure to hold
// is ours ≥ 0.8 × the faster of the two gocmpp loops.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gocmpp "github.com/bigwhite/gocmpp"

	"github.com/sscard/platform/infra/smssim"
	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/cmpp"
	"github.com/sscard/platform/shared/sms/link"
)

const account, secret = "901234", "bench-secret"

func main() {
	dur := flag.Duration("duration", 3*time.Second, "measuring time per client")
	window := flag.Int("window", 16, "submits in flight")
	flag.Parse()
	sim, err := smssim.StartCMPP("127.0.0.1:0", map[string]string{account: secret})
	if err != nil {
		fail(err)
	}
	defer sim.Close()
	sim.Reports(false)
	segs, _ := sms.Split("有3张社保卡照片审核超期，请尽快审核。", 0)

	settle := func() { time.Sleep(300 * time.Millisecond) }
	ours := runOurs(sim.Addr(), segs, *window, *dur)
	settle()
	stop := runGocmppStopAndWait(sim.Addr(), segs[0].Data, *dur)
	settle()
	pipe := runGocmppPipelined(sim.Addr(), segs[0].Data, *window, *dur)
	fmt.Printf("sms-bench ours (link+cmpp, window %d):      %8.0f submits/s\n", *window, ours)
	fmt.Printf("sms-bench gocmpp stop-and-wait:             %8.0f submits/s\n", stop)
	fmt.Printf("sms-bench gocmpp pipelined (window %d):     %8.0f submits/s\n", *window, pipe)
	best := max(stop, pipe)
	fmt.Printf("sms-bench ratio ours/best-gocmpp = %.2f (floor 0.80)\n", ours/best)
	if ours < 0.8*best {
		fmt.Println("sms-bench BELOW FLOOR")
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sms-bench:", err)
	os.Exit(2)
}

func runOurs(addr string, segs []sms.Segment, window int, dur time.Duration) float64 {
	c := link.New(&cmpp.Client{Account: account, Secret: secret, SrcID: "10657001"}, link.Config{Addr: addr, Window: window})
	defer c.Close()
	if err := c.Connect(context.Background()); err != nil {
		fail(err)
	}
	var n atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 * window {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := c.Submit(context.Background(), "13800138000", segs, false); err != nil {
					fail(err)
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func submitPkt(content []byte) *gocmpp.Cmpp3SubmitReqPkt {
	return &gocmpp.Cmpp3SubmitReqPkt{PkTotal: 1, PkNumber: 1, MsgFmt: 8, MsgSrc: account, FeeType: "01", SrcId: "10657001",
		DestUsrTl: 1, DestTerminalId: []string{"13800138000"}, MsgLength: uint8(len(content)), MsgContent: string(content)}
}

func runGocmppStopAndWait(addr string, content []byte, dur time.Duration) float64 {
	c := gocmpp.NewClient(gocmpp.V30)
	if err := c.Connect(addr, account, secret, 5*time.Second); err != nil {
		fail(err)
	}
	defer c.Disconnect()
	n := 0
	start := time.Now()
	for time.Since(start) < dur {
		if _, err := c.SendReqPkt(submitPkt(content)); err != nil {
			fail(err)
		}
		if _, err := c.RecvAndUnpackPkt(5 * time.Second); err != nil {
			fail(err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

func runGocmppPipelined(addr string, content []byte, window int, dur time.Duration) float64 {
	c := gocmpp.NewClient(gocmpp.V30)
	if err := c.Connect(addr, account, secret, 5*time.Second); err != nil {
		fail(err)
	}
	defer c.Disconnect()
	slots := make(chan struct{}, window)
	var answered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := c.RecvAndUnpackPkt(2 * time.Second)
			if err != nil {
				return
			}
			if _, ok := p.(*gocmpp.Cmpp3SubmitRspPkt); ok {
				answered.Add(1)
				<-slots
			}
		}
	}()
	start := time.Now()
	sent := 0
	for time.Since(start) < dur {
		slots <- struct{}{}
		if _, err := c.SendReqPkt(submitPkt(content)); err != nil {
			fail(err)
		}
		sent++
	}
	for answered.Load() < int64(sent) && time.Since(start) < dur+5*time.Second {
		time.Sleep(time.Millisecond)
	}
	return float64(answered.Load()) / time.Since(start).Seconds()
}
