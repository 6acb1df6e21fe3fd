// Command sms measures the sustained submit rate through our CMPP client (shared/sms/link
// + cmpp: window, answers matched by sequence, coalesced writes) against gocmpp's raw
// submit loops, to the same simulated ISMG in the same run: gocmpp stop-and-wait (send,
// wait for the answer: its client's own pattern) and gocmpp pipelined (one goroutine
// writes submits, one reads answers, at most -window unanswered, i.e. our window). The
// three take turns in short slices (-slice) for -duration each, so a change in the
// machine's load hits all three alike. The figure to hold is ours ≥ 0.8 × the faster of
// the two gocmpp loops.
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

// runner submits for d and returns how many submits were answered.
type runner func(d time.Duration) int64

func main() {
	dur := flag.Duration("duration", 3*time.Second, "measuring time per client")
	slice := flag.Duration("slice", 250*time.Millisecond, "length of one turn")
	window := flag.Int("window", 16, "submits in flight")
	flag.Parse()
	sim, err := smssim.StartCMPP("127.0.0.1:0", map[string]string{account: secret})
	if err != nil {
		fail(err)
	}
	defer sim.Close()
	sim.Reports(false)
	segs, _ := sms.Split("有3张社保卡照片审核超期，请尽快审核。", 0)

	names := []string{"ours (link+cmpp)", "gocmpp stop-and-wait", "gocmpp pipelined"}
	runners := []runner{ours(sim.Addr(), segs, *window), stopAndWait(sim.Addr(), segs[0].Data), pipelined(sim.Addr(), segs[0].Data, *window)}
	counts := make([]int64, len(runners))
	spent := make([]time.Duration, len(runners))
	for i := range runners { // warm up
		runners[i](*slice / 2)
	}
	for round := 0; time.Duration(round)*(*slice) < *dur; round++ {
		for k := range runners {
			i := (round + k) % len(runners) // rotate who goes first
			t := time.Now()
			counts[i] += runners[i](*slice)
			spent[i] += time.Since(t)
		}
	}
	rate := make([]float64, len(runners))
	for i, n := range names {
		rate[i] = float64(counts[i]) / spent[i].Seconds()
		fmt.Printf("sms-bench %-24s window %2d: %8.0f submits/s\n", n, *window, rate[i])
	}
	best := max(rate[1], rate[2])
	fmt.Printf("sms-bench ratio ours/best-gocmpp = %.2f (floor 0.80)\n", rate[0]/best)
	if rate[0] < 0.8*best {
		fmt.Println("sms-bench BELOW FLOOR")
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sms-bench:", err)
	os.Exit(2)
}

func ours(addr string, segs []sms.Segment, window int) runner {
	c := link.New(&cmpp.Client{Account: account, Secret: secret, SrcID: "10657001"}, link.Config{Addr: addr, Window: window})
	if err := c.Connect(context.Background()); err != nil {
		fail(err)
	}
	return func(d time.Duration) int64 {
		var n atomic.Int64
		deadline := time.Now().Add(d)
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
		return n.Load()
	}
}

func submitPkt(content []byte) *gocmpp.Cmpp3SubmitReqPkt {
	return &gocmpp.Cmpp3SubmitReqPkt{PkTotal: 1, PkNumber: 1, MsgFmt: 8, MsgSrc: account, FeeType: "01", SrcId: "10657001",
		DestUsrTl: 1, DestTerminalId: []string{"13800138000"}, MsgLength: uint8(len(content)), MsgContent: string(content)}
}

func stopAndWait(addr string, content []byte) runner {
	c := gocmpp.NewClient(gocmpp.V30)
	if err := c.Connect(addr, account, secret, 5*time.Second); err != nil {
		fail(err)
	}
	return func(d time.Duration) int64 {
		var n int64
		for start := time.Now(); time.Since(start) < d; n++ {
			if _, err := c.SendReqPkt(submitPkt(content)); err != nil {
				fail(err)
			}
			if _, err := c.RecvAndUnpackPkt(5 * time.Second); err != nil {
				fail(err)
			}
		}
		return n
	}
}

func pipelined(addr string, content []byte, window int) runner {
	c := gocmpp.NewClient(gocmpp.V30)
	if err := c.Connect(addr, account, secret, 5*time.Second); err != nil {
		fail(err)
	}
	return func(d time.Duration) int64 {
		slots := make(chan struct{}, window)
		var answered atomic.Int64
		var sent int64
		done := make(chan struct{})
		stop := make(chan struct{})
		go func() {
			defer close(done)
			for answered.Load() < atomic.LoadInt64(&sent) || !closed(stop) {
				p, err := c.RecvAndUnpackPkt(time.Second)
				if err != nil {
					if closed(stop) {
						return
					}
					continue
				}
				if _, ok := p.(*gocmpp.Cmpp3SubmitRspPkt); ok {
					answered.Add(1)
					<-slots
				}
			}
		}()
		for start := time.Now(); time.Since(start) < d; {
			slots <- struct{}{}
			if _, err := c.SendReqPkt(submitPkt(content)); err != nil {
				fail(err)
			}
			atomic.AddInt64(&sent, 1)
		}
		close(stop)
		<-done
		return answered.Load()
	}
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
