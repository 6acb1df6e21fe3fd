// Package link is what the three carrier protocols (CMPP, SMGP, SGIP) share on the
// client side: one long-lived TCP connection per gateway account, logged in, kept alive,
// with a sliding window of submits awaiting their answers, flow-control answers turned
// into backoff and retry, and reconnection that resubmits what was in flight. Each
// protocol package supplies a Protocol (framing, login, packet layouts); this package
// never looks inside a packet body.
package link

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sscard/platform/shared/sms"
)

// Kind classifies a packet the gateway sent.
type Kind int

const (
	KindOther Kind = iota
	KindSubmitResp
	KindReport         // a delivery report (status report)
	KindMO             // a message from a handset (not used by the platform; answered)
	KindActiveTest     // the gateway's keep-alive
	KindActiveTestResp // the answer to ours
	KindTerminate      // the gateway logs us out
	KindTerminateResp
)

// Packet is a parsed packet: what the link needs to act on it.
type Packet struct {
	Kind   Kind
	Seq    uint32
	MsgID  string // gateway message id (submit answer, report)
	Result uint32 // submit answer's result, 0 = accepted
	Report Report
	Raw    []byte
}

// Report is a delivery report.
type Report struct {
	MsgID     string
	Stat      string // carrier status word, e.g. DELIVRD, UNDELIV, EXPIRED
	Dest      string
	Delivered bool
	At        time.Time
}

// Submission is one segment to one number.
type Submission struct {
	Dest    string
	Segment sms.Segment
	Report  bool // ask for a delivery report
}

// Protocol is one carrier protocol's client side.
type Protocol interface {
	Name() string
	// Login sends the login packet with seq on conn and reads its answer; a refused
	// login is a *LoginError.
	Login(conn net.Conn, seq uint32, timeout time.Duration) error
	// Submit lays out the submit packet.
	Submit(seq uint32, s Submission) ([]byte, error)
	// Parse classifies a packet read from the connection (full packet, header included).
	Parse(p []byte) (Packet, error)
	// Answer is the response to a packet that needs one (report, MO, keep-alive,
	// terminate), nil otherwise.
	Answer(p Packet) []byte
	// ActiveTest is the keep-alive request, nil when the protocol has none (SGIP).
	ActiveTest(seq uint32) []byte
	// Throttled reports whether a submit result means "flow control: try again later".
	Throttled(result uint32) bool
}

// LoginError is a login the gateway refused, with its status code.
type LoginError struct {
	Protocol string
	Status   uint32
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("%s login refused: status %d", e.Protocol, e.Status)
}

// RejectedError is a submit the gateway refused for good (not flow control).
type RejectedError struct {
	Protocol string
	Result   uint32
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s submit refused: result %d", e.Protocol, e.Result)
}

// ReadPacket reads one length-prefixed packet (all three protocols start with a 4-byte
// big-endian total length); max guards against garbage.
func ReadPacket(r io.Reader, buf []byte, max int) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(l[:]))
	if n < 12 || n > max {
		return nil, fmt.Errorf("bad packet length %d", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	copy(buf, l[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// Config tunes a client.
type Config struct {
	Addr      string
	Window    int           // submits in flight (default 16)
	KeepAlive time.Duration // idle time before a keep-alive (default 30 s; 0 keeps the default)
	Timeout   time.Duration // login and answer timeout (default 10 s)
	// Backoff is the first wait after a flow-control answer or a lost connection, doubled
	// up to MaxBackoff (defaults 50 ms and 2 s).
	Backoff, MaxBackoff time.Duration
	// Attempts bounds the tries of one segment (default 20) before Submit gives up.
	Attempts int
	// OnReport handles a delivery report; the report is acknowledged to the gateway only
	// when it returns nil, so a report the platform could not record comes again.
	OnReport func(Report) error
	Dial     func(ctx context.Context, addr string) (net.Conn, error)
}

func (c *Config) defaults() {
	if c.Window <= 0 {
		c.Window = 16
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = 50 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 20
	}
	if c.Dial == nil {
		d := &net.Dialer{Timeout: c.Timeout}
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
}

// Stats counts what a client did, for tests and metrics.
type Stats struct {
	Logins, Submitted, Throttled, Resubmitted, Reports atomic.Int64
}

// Client is a logged-in connection to one gateway account, reconnected on demand. Submit
// is safe for concurrent use; the window bounds how many answers are awaited at once.
type Client struct {
	cfg   Config
	proto Protocol
	seq   atomic.Uint32
	slots chan struct{}
	Stats Stats

	mu      sync.Mutex
	cur     *conn
	dialing chan struct{} // closed when the dial in progress ends
	lastErr error
	closed  bool
}

// conn is one TCP connection's life.
type conn struct {
	c       net.Conn
	out     chan []byte // packets for the writer, which coalesces them into few writes
	mu      sync.Mutex
	pending map[uint32]chan Packet
	done    chan struct{}
	err     error
	last    atomic.Int64 // unix nanos of the last packet received
}

var errDropped = errors.New("connection lost")

// New returns a client; it dials on the first Submit (or Connect).
func New(p Protocol, cfg Config) *Client {
	cfg.defaults()
	return &Client{cfg: cfg, proto: p, slots: make(chan struct{}, cfg.Window)}
}

func (cl *Client) nextSeq() uint32 { return cl.seq.Add(1) }

// Connect logs in now (the first Submit would otherwise); it returns the login error.
func (cl *Client) Connect(ctx context.Context) error {
	_, err := cl.conn(ctx)
	return err
}

// conn returns the live connection, dialing and logging in when there is none; one
// caller dials while the others wait for it.
func (cl *Client) conn(ctx context.Context) (*conn, error) {
	for {
		cl.mu.Lock()
		if cl.closed {
			cl.mu.Unlock()
			return nil, errors.New("client closed")
		}
		if c := cl.cur; c != nil {
			select {
			case <-c.done:
				cl.cur = nil
			default:
				cl.mu.Unlock()
				return c, nil
			}
		}
		if w := cl.dialing; w != nil {
			cl.mu.Unlock()
			select {
			case <-w:
				cl.mu.Lock()
				err := cl.lastErr
				cl.mu.Unlock()
				if err != nil {
					return nil, err
				}
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		w := make(chan struct{})
		cl.dialing = w
		cl.mu.Unlock()
		c, err := cl.dial(ctx)
		cl.mu.Lock()
		cl.cur, cl.lastErr, cl.dialing = c, err, nil
		cl.mu.Unlock()
		close(w)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

func (cl *Client) dial(ctx context.Context) (*conn, error) {
	nc, err := cl.cfg.Dial(ctx, cl.cfg.Addr)
	if err != nil {
		return nil, err
	}
	if err := cl.proto.Login(nc, cl.nextSeq(), cl.cfg.Timeout); err != nil {
		nc.Close()
		return nil, err
	}
	cl.Stats.Logins.Add(1)
	c := &conn{c: nc, out: make(chan []byte, 2*cl.cfg.Window), pending: map[uint32]chan Packet{}, done: make(chan struct{})}
	c.last.Store(time.Now().UnixNano())
	go cl.writeLoop(c)
	go cl.read(c)
	go cl.keepAlive(c)
	return c, nil
}

// close ends c once, failing everything that awaits an answer on it.
func (c *conn) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	c.err = err
	close(c.done)
	c.c.Close()
}

// write hands b to the connection's writer; a failed write closes the connection, which
// every submit waiting on it sees.
func (c *conn) write(b []byte, _ time.Duration) error {
	select {
	case c.out <- b:
		return nil
	case <-c.done:
		return errDropped
	}
}

// writeLoop writes what is queued, flushing once the queue is empty: under load many
// submits go out in one system call.
func (cl *Client) writeLoop(c *conn) {
	bw := bufio.NewWriterSize(c.c, 32<<10)
	for {
		select {
		case b := <-c.out:
			_, _ = bw.Write(b)
			for more := true; more; {
				select {
				case b := <-c.out:
					_, _ = bw.Write(b)
				default:
					more = false
				}
			}
			_ = c.c.SetWriteDeadline(time.Now().Add(cl.cfg.Timeout))
			if err := bw.Flush(); err != nil {
				c.close(fmt.Errorf("%w: %v", errDropped, err))
				return
			}
		case <-c.done:
			return
		}
	}
}

func (cl *Client) read(c *conn) {
	buf := make([]byte, 4096)
	br := bufio.NewReaderSize(c.c, 32<<10)
	for {
		p, err := ReadPacket(br, buf, 8192)
		if err != nil {
			c.close(fmt.Errorf("%w: %v", errDropped, err))
			return
		}
		c.last.Store(time.Now().UnixNano())
		pk, err := cl.proto.Parse(p)
		if err != nil {
			c.close(err)
			return
		}
		switch pk.Kind {
		case KindSubmitResp, KindActiveTestResp:
			c.mu.Lock()
			ch := c.pending[pk.Seq]
			delete(c.pending, pk.Seq)
			c.mu.Unlock()
			if ch != nil {
				ch <- pk
			}
		case KindReport:
			cl.Stats.Reports.Add(1)
			pk.Raw = append([]byte(nil), p...)
			go cl.report(c, pk)
		case KindTerminate:
			_ = c.write(cl.proto.Answer(pk), cl.cfg.Timeout)
			c.close(fmt.Errorf("%w: gateway terminated the session", errDropped))
			return
		default:
			if a := cl.proto.Answer(pk); a != nil {
				_ = c.write(a, cl.cfg.Timeout)
			}
		}
	}
}

// report hands a delivery report to the platform and acknowledges it once recorded.
func (cl *Client) report(c *conn, pk Packet) {
	if cl.cfg.OnReport != nil {
		if err := cl.cfg.OnReport(pk.Report); err != nil {
			return // unacknowledged: the gateway sends it again
		}
	}
	_ = c.write(cl.proto.Answer(pk), cl.cfg.Timeout)
}

// keepAlive sends the protocol's keep-alive when the line was idle, and gives the
// connection up when three go unanswered.
func (cl *Client) keepAlive(c *conn) {
	if cl.proto.ActiveTest(0) == nil {
		return
	}
	t := time.NewTicker(cl.cfg.KeepAlive / 3)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.last.Load())) < cl.cfg.KeepAlive {
			missed = 0
			continue
		}
		seq := cl.nextSeq()
		ch := c.await(seq)
		if ch == nil || c.write(cl.proto.ActiveTest(seq), cl.cfg.Timeout) != nil {
			return
		}
		select {
		case <-ch:
			missed = 0
		case <-time.After(cl.cfg.Timeout):
			c.forget(seq)
			if missed++; missed >= 3 {
				c.close(fmt.Errorf("%w: keep-alive unanswered", errDropped))
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *conn) await(seq uint32) chan Packet {
	ch := make(chan Packet, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return nil
	default:
	}
	c.pending[seq] = ch
	return ch
}

func (c *conn) forget(seq uint32) {
	c.mu.Lock()
	delete(c.pending, seq)
	c.mu.Unlock()
}

// Submit sends the segments of one message to dest and returns the gateway's message id
// of each. A flow-control answer waits (backoff with jitter) and tries again; a lost
// connection reconnects and resubmits what was not answered — a segment the gateway
// never answered was not accepted, so nothing is lost and nothing is sent twice.
func (cl *Client) Submit(ctx context.Context, dest string, segs []sms.Segment, report bool) ([]string, error) {
	ids := make([]string, len(segs))
	for i, s := range segs {
		id, err := cl.submitOne(ctx, Submission{Dest: dest, Segment: s, Report: report})
		if err != nil {
			return ids[:i], err
		}
		ids[i] = id
	}
	return ids, nil
}

func (cl *Client) submitOne(ctx context.Context, s Submission) (string, error) {
	wait := cl.cfg.Backoff
	var last error
	for attempt := 0; attempt < cl.cfg.Attempts; attempt++ {
		if attempt > 0 {
			cl.Stats.Resubmitted.Add(1)
			d := wait/2 + rand.N(wait/2+1)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return "", ctx.Err()
			}
			wait = min(2*wait, cl.cfg.MaxBackoff)
		}
		pk, err := cl.try(ctx, s)
		switch {
		case err != nil:
			var le *LoginError
			if errors.As(err, &le) || ctx.Err() != nil {
				return "", err
			}
			last = err // dial failure or lost connection: retry
		case pk.Result == 0:
			cl.Stats.Submitted.Add(1)
			return pk.MsgID, nil
		case cl.proto.Throttled(pk.Result):
			cl.Stats.Throttled.Add(1)
			last = fmt.Errorf("%s flow control (result %d)", cl.proto.Name(), pk.Result)
		default:
			return "", &RejectedError{Protocol: cl.proto.Name(), Result: pk.Result}
		}
	}
	return "", fmt.Errorf("%s: gave up after %d attempts: %w", cl.proto.Name(), cl.cfg.Attempts, last)
}

// try sends one segment within the window and waits for its answer.
func (cl *Client) try(ctx context.Context, s Submission) (Packet, error) {
	select {
	case cl.slots <- struct{}{}:
	case <-ctx.Done():
		return Packet{}, ctx.Err()
	}
	defer func() { <-cl.slots }()
	c, err := cl.conn(ctx)
	if err != nil {
		return Packet{}, err
	}
	seq := cl.nextSeq()
	b, err := cl.proto.Submit(seq, s)
	if err != nil {
		return Packet{}, err
	}
	ch := c.await(seq)
	if ch == nil {
		return Packet{}, errDropped
	}
	if err := c.write(b, cl.cfg.Timeout); err != nil {
		return Packet{}, fmt.Errorf("%w: %v", errDropped, err)
	}
	t := time.NewTimer(cl.cfg.Timeout)
	defer t.Stop()
	select {
	case pk := <-ch:
		return pk, nil
	case <-c.done:
		return Packet{}, errDropped
	case <-t.C:
		// An answer this late means the line is broken: start over on a new one.
		c.close(fmt.Errorf("%w: no answer in %s", errDropped, cl.cfg.Timeout))
		return Packet{}, errDropped
	case <-ctx.Done():
		c.forget(seq)
		return Packet{}, ctx.Err()
	}
}

// Close logs out (best effort) and closes the connection.
func (cl *Client) Close() error {
	cl.mu.Lock()
	cl.closed = true
	c := cl.cur
	cl.cur = nil
	cl.mu.Unlock()
	if c != nil {
		c.close(errors.New("client closed"))
	}
	return nil
}
