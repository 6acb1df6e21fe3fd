// Package smssim is a carrier SMS gateway simulator for development and tests: it speaks
// the real wire protocol (CMPP 2.0/3.0 today), checks logins against its accounts,
// reassembles long messages, keeps what it received, sends delivery reports, and can be
// told to throttle, drop the connection or delay its reports. It is not a carrier: it
// delivers nothing to any handset.
package smssim

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sscard/platform/shared/sms"
)

// Message is a complete message as a handset would show it.
type Message struct {
	Protocol string    `json:"protocol"`
	Account  string    `json:"account"`
	Dest     string    `json:"dest"`
	Src      string    `json:"src"`
	Text     string    `json:"text"`
	Parts    int       `json:"parts"`
	MsgIDs   []string  `json:"msgIds"`
	At       time.Time `json:"at"`
}

// Controls change how the simulator answers; safe to change while it runs.
type Controls struct {
	mu sync.Mutex
	// throttle answers the next n submits with flow control.
	throttle int
	// dropAfter closes the connection on the submit after n more accepted ones (-1: off),
	// without answering or keeping that submit.
	dropAfter int
	// reportDelay delays delivery reports; noReports withholds them.
	reportDelay time.Duration
	noReports   bool
	// failing numbers get a failed report (UNDELIV); refused numbers are refused at
	// submit as not this carrier's (ported away).
	failing, refused map[string]bool
}

// Throttle answers the next n submits with the flow-control result.
func (s *Sim) Throttle(n int) { s.c.mu.Lock(); s.c.throttle = n; s.c.mu.Unlock() }

// DropAfter closes the connection when the (n+1)th submit from now arrives, before
// answering it; the submit is not kept (the client must send it again).
func (s *Sim) DropAfter(n int) { s.c.mu.Lock(); s.c.dropAfter = n; s.c.mu.Unlock() }

// DelayReports delays every delivery report by d.
func (s *Sim) DelayReports(d time.Duration) { s.c.mu.Lock(); s.c.reportDelay = d; s.c.mu.Unlock() }

// Reports turns delivery reports on or off.
func (s *Sim) Reports(on bool) { s.c.mu.Lock(); s.c.noReports = !on; s.c.mu.Unlock() }

// FailNumber makes reports for dest say UNDELIV.
func (s *Sim) FailNumber(dest string) { s.c.mu.Lock(); s.c.failing[dest] = true; s.c.mu.Unlock() }

// RefuseNumber refuses submits to dest as a bad destination (a number ported away).
func (s *Sim) RefuseNumber(dest string) { s.c.mu.Lock(); s.c.refused[dest] = true; s.c.mu.Unlock() }

func (c *Controls) refuses(dest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[strings.TrimPrefix(dest, "86")]
}

// verdict is what to do with one submit.
type verdict int

const (
	accept verdict = iota
	throttle
	drop
)

func (c *Controls) next() verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttle > 0 {
		c.throttle--
		return throttle
	}
	if c.dropAfter == 0 {
		c.dropAfter = -1
		return drop
	}
	if c.dropAfter > 0 {
		c.dropAfter--
	}
	return accept
}

func (c *Controls) report(dest string) (stat string, delay time.Duration, send bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stat = "DELIVRD"
	if c.failing[dest] {
		stat = "UNDELIV"
	}
	return stat, c.reportDelay, !c.noReports
}

// Sim is one simulated gateway.
type Sim struct {
	Protocol string
	Accounts map[string]string // account → shared secret
	// Log, when set, gets one JSON line per complete message received.
	Log io.Writer

	c        Controls
	l        net.Listener
	mu       sync.Mutex
	received []Message
	parts    map[string]*partial
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	msgSeq   atomic.Uint64
	reportTo SGIPReportTo
	// Submits counts accepted segments, Logins successful logins, Refused failed ones.
	Submits, Logins, Refused, Throttled, ActiveTests atomic.Int64
	// ReportsAcked counts acknowledged reports, ReportsResent reports sent again.
	ReportsAcked, ReportsResent atomic.Int64
}

type partial struct {
	got   map[int]string
	ids   []string
	total int
	src   string
}

func newSim(protocol string, accounts map[string]string) *Sim {
	return &Sim{Protocol: protocol, Accounts: accounts, parts: map[string]*partial{}, conns: map[net.Conn]bool{},
		c: Controls{dropAfter: -1, failing: map[string]bool{}, refused: map[string]bool{}}}
}

// Addr is the listening address.
func (s *Sim) Addr() string { return s.l.Addr().String() }

// Received returns the complete messages so far.
func (s *Sim) Received() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.received...)
}

// Close stops listening and closes every connection.
func (s *Sim) Close() error {
	err := s.l.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Sim) serve(handle func(net.Conn)) {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { s.mu.Lock(); delete(s.conns, c); s.mu.Unlock(); c.Close() }()
			handle(c)
		}()
	}
}

func (s *Sim) newMsgID() uint64 {
	// Like a carrier's: time in the high bits, a counter below, unique per simulator.
	return uint64(time.Now().Unix())<<24 | s.msgSeq.Add(1)&0xFFFFFF
}

// keep records one accepted segment and, when its message is complete, the message.
func (s *Sim) keep(account, src, dest string, seg sms.Segment, msgID string) {
	s.Submits.Add(1)
	text := seg.Data
	ref, total, number, body, ok := uint16(0), 1, 1, text, false
	if seg.UDHI {
		ref, total, number, body, ok = sms.Concat(seg.Data)
	}
	decode := func(b []byte) string {
		if seg.Format == sms.FormatUCS2 {
			return sms.DecodeUCS2(b)
		}
		return string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || total <= 1 {
		s.add(Message{Protocol: s.Protocol, Account: account, Dest: dest, Src: src, Text: decode(body), Parts: 1, MsgIDs: []string{msgID}, At: time.Now()})
		return
	}
	key := account + "|" + dest + "|" + string(rune(ref))
	p := s.parts[key]
	if p == nil {
		p = &partial{got: map[int]string{}, total: total, src: src}
		s.parts[key] = p
	}
	p.got[number] = decode(body)
	p.ids = append(p.ids, msgID)
	if len(p.got) < p.total {
		return
	}
	delete(s.parts, key)
	var full string
	for i := 1; i <= p.total; i++ {
		full += p.got[i]
	}
	s.add(Message{Protocol: s.Protocol, Account: account, Dest: dest, Src: src, Text: full, Parts: p.total, MsgIDs: p.ids, At: time.Now()})
}

func (s *Sim) add(m Message) {
	s.received = append(s.received, m)
	if s.Log != nil {
		b, _ := json.Marshal(m)
		_, _ = s.Log.Write(append(b, '\n'))
	}
}

// acks tracks the reports of one connection awaiting the client's DELIVER_RESP.
type acks struct {
	mu      sync.Mutex
	waiting map[uint32]chan struct{}
}

func (a *acks) expect(seq uint32) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiting == nil {
		a.waiting = map[uint32]chan struct{}{}
	}
	ch := make(chan struct{})
	a.waiting[seq] = ch
	return ch
}

func (a *acks) ack(seq uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.waiting[seq]; ok {
		close(ch)
		delete(a.waiting, seq)
	}
}

// ReportAttempts and ReportRetry: a report not acknowledged within ReportRetry is sent
// again, up to ReportAttempts times, as gateways do.
const (
	ReportAttempts = 3
	ReportRetry    = time.Second
)

// deliverReport sends a report (a fresh sequence number each time) until acknowledged.
func (s *Sim) deliverReport(a *acks, nextSeq func() uint32, write func([]byte) error, packet func(seq uint32) []byte, done <-chan struct{}) {
	for range ReportAttempts {
		seq := nextSeq()
		ch := a.expect(seq)
		if write(packet(seq)) != nil {
			return
		}
		select {
		case <-ch:
			s.ReportsAcked.Add(1)
			return
		case <-done:
			return
		case <-time.After(ReportRetry):
			s.ReportsResent.Add(1)
		}
	}
}

// hangUp ends a connection the way a gateway that drops it does, without losing what was
// already answered: the answers go out, then FIN; what the client still sends is read and
// discarded (never kept, never answered) until it closes too. A plain close with unread
// input would reset the connection and could destroy answers still in the client's
// receive buffer, which no gateway-side drop is meant to model.
func hangUp(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.Copy(io.Discard, c)
}
