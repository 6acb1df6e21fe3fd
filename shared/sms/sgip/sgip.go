// Package sgip is China Unicom's SGIP 1.2: the packet layouts of both sides, the client
// side as a link.Protocol, and the SP's own listener for what the SMG pushes (delivery
// reports and mobile-originated messages), since SGIP has the SMG connect to the SP for
// those. A 20-octet header (length, command, and a 12-octet sequence number: node id,
// MMDDhhmmss, counter); passwords travel in clear at Bind; no keep-alive; numbers carry
// the 86 prefix; a report names its submit by that submit's sequence number.
package sgip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sscard/platform/shared/sms/link"
)

// Command ids.
const (
	Bind        uint32 = 0x00000001
	Unbind      uint32 = 0x00000002
	Submit      uint32 = 0x00000003
	Deliver     uint32 = 0x00000004
	Report      uint32 = 0x00000005
	Resp        uint32 = 0x80000000
	BindResp           = Resp | Bind
	UnbindResp         = Resp | Unbind
	SubmitResp         = Resp | Submit
	DeliverResp        = Resp | Deliver
	ReportResp         = Resp | Report
)

// Login types: the SP binds to the SMG (1), the SMG binds to the SP (2).
const (
	LoginSP  = 1
	LoginSMG = 2
)

// Results of note: 1 illegal login; 6 illegal number (treated as "not this carrier's
// number"); 11 node busy (treated as flow control). 1 is in the reference; 6 and 11 follow
// the SGIP 1.2 result table as we know it and are not confirmed against a live SMG.
const (
	ResultOK         = 0
	ResultBadLogin   = 1
	ResultBadNumber  = 6
	ResultNodeBusy   = 11
	headerLen        = 20
	MaxPacket        = 4096
	reportStateOK    = 0
	reportStateError = 2
)

// Seq is SGIP's sequence number.
type Seq struct{ Node, Time, N uint32 }

// String is the form stored as the gateway message id: node-time-counter.
func (s Seq) String() string { return fmt.Sprintf("%d-%010d-%d", s.Node, s.Time, s.N) }

func header(b *bytes.Buffer, cmd uint32, s Seq) {
	b.Write(make([]byte, 4))
	_ = binary.Write(b, binary.BigEndian, cmd)
	_ = binary.Write(b, binary.BigEndian, s.Node)
	_ = binary.Write(b, binary.BigEndian, s.Time)
	_ = binary.Write(b, binary.BigEndian, s.N)
}

// SeqOf reads a packet's sequence number.
func SeqOf(p []byte) Seq {
	return Seq{binary.BigEndian.Uint32(p[8:]), binary.BigEndian.Uint32(p[12:]), binary.BigEndian.Uint32(p[16:])}
}

// NewSeq is the sequence number of node's n-th packet now.
func NewSeq(node, n uint32, at time.Time) Seq {
	ts, _ := link.Timestamp(at)
	return Seq{node, ts, n}
}

// Command of a packet.
func Command(p []byte) uint32 { return binary.BigEndian.Uint32(p[4:]) }

// BindPacket is Bind.
func BindPacket(s Seq, loginType byte, name, password string) []byte {
	var b bytes.Buffer
	header(&b, Bind, s)
	b.WriteByte(loginType)
	link.Octets(&b, name, 16)
	link.Octets(&b, password, 16)
	link.Octets(&b, "", 8)
	return link.Finish(&b)
}

// ParseBind reads Bind.
func ParseBind(p []byte) (s Seq, loginType byte, name, password string, err error) {
	if len(p) != headerLen+41 || Command(p) != Bind {
		return s, 0, "", "", errors.New("sgip: not a Bind packet")
	}
	b := p[headerLen:]
	return SeqOf(p), b[0], link.CStr(b[1:17]), link.CStr(b[17:33]), nil
}

// RespPacket is any of the responses that carry Result + Reserve (Bind, Submit, Deliver,
// Report); Unbind_Resp is header only.
func RespPacket(cmd uint32, s Seq, result byte) []byte {
	var b bytes.Buffer
	header(&b, cmd, s)
	if cmd != UnbindResp {
		b.WriteByte(result)
		link.Octets(&b, "", 8)
	}
	return link.Finish(&b)
}

// UnbindPacket is Unbind.
func UnbindPacket(s Seq) []byte {
	var b bytes.Buffer
	header(&b, Unbind, s)
	return link.Finish(&b)
}

// SubmitFields are the parts of Submit the platform sets or the simulator reads.
type SubmitFields struct {
	SPNumber    string
	Users       []string // 86-prefixed
	CorpID      string
	ServiceType string
	Report      bool
	UDHI        bool
	Coding      byte
	Content     []byte
}

// SubmitPacket is Submit.
func SubmitPacket(s Seq, f SubmitFields) ([]byte, error) {
	if len(f.Users) == 0 || len(f.Users) > 100 || len(f.Content) > 2000 {
		return nil, errors.New("sgip: submit users or content out of range")
	}
	var b bytes.Buffer
	header(&b, Submit, s)
	link.Octets(&b, f.SPNumber, 21)
	link.Octets(&b, "000000000000000000000", 21) // ChargeNumber: all zeros = the SP pays
	b.WriteByte(byte(len(f.Users)))
	for _, u := range f.Users {
		link.Octets(&b, u, 21)
	}
	link.Octets(&b, f.CorpID, 5)
	link.Octets(&b, f.ServiceType, 10)
	b.WriteByte(1)          // FeeType: free
	link.Octets(&b, "0", 6) // FeeValue
	link.Octets(&b, "0", 6) // GivenValue
	b.WriteByte(0)          // AgentFlag
	b.WriteByte(2)          // MorelatetoMTFlag: not caused by an MO
	b.WriteByte(0)          // Priority
	link.Octets(&b, "", 16) // ExpireTime
	link.Octets(&b, "", 16) // ScheduleTime
	if f.Report {
		b.WriteByte(1) // ReportFlag: always report
	} else {
		b.WriteByte(2)
	}
	b.WriteByte(0) // TP_pid
	if f.UDHI {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	b.WriteByte(f.Coding)
	b.WriteByte(0) // MessageType
	_ = binary.Write(&b, binary.BigEndian, uint32(len(f.Content)))
	b.Write(f.Content)
	link.Octets(&b, "", 8)
	return link.Finish(&b), nil
}

// ParseSubmit reads Submit (server side).
func ParseSubmit(p []byte) (s Seq, f SubmitFields, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("sgip: truncated Submit")
		}
	}()
	if Command(p) != Submit {
		return s, f, errors.New("sgip: not a Submit packet")
	}
	s = SeqOf(p)
	b := p[headerLen:]
	f.SPNumber = link.CStr(b[:21])
	b = b[42:]
	n := int(b[0])
	b = b[1:]
	for range n {
		f.Users = append(f.Users, link.CStr(b[:21]))
		b = b[21:]
	}
	f.CorpID = link.CStr(b[:5])
	f.ServiceType = link.CStr(b[5:15])
	b = b[15+1+6+6+1+1+1+16+16:]
	f.Report = b[0] == 1
	f.UDHI = b[2] == 1
	f.Coding = b[3]
	l := binary.BigEndian.Uint32(b[5:9])
	f.Content = append([]byte(nil), b[9:9+l]...)
	return s, f, nil
}

// ReportPacket is Report: the state of the submit whose sequence number is of.
func ReportPacket(s, of Seq, user string, delivered bool, errCode byte) []byte {
	var b bytes.Buffer
	header(&b, Report, s)
	_ = binary.Write(&b, binary.BigEndian, of.Node)
	_ = binary.Write(&b, binary.BigEndian, of.Time)
	_ = binary.Write(&b, binary.BigEndian, of.N)
	b.WriteByte(0) // ReportType: about a submit
	link.Octets(&b, user, 21)
	if delivered {
		b.WriteByte(reportStateOK)
	} else {
		b.WriteByte(reportStateError)
	}
	b.WriteByte(errCode)
	link.Octets(&b, "", 8)
	return link.Finish(&b)
}

// ParseReport reads Report as a link.Report (Stat DELIVRD, or ERR:<code>).
func ParseReport(p []byte) (link.Report, error) {
	if len(p) != headerLen+44 || Command(p) != Report {
		return link.Report{}, errors.New("sgip: not a Report packet")
	}
	b := p[headerLen:]
	of := Seq{binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])}
	r := link.Report{MsgID: of.String(), Dest: strings.TrimPrefix(link.CStr(b[13:34]), "86"), At: time.Now()}
	if b[34] == reportStateOK {
		r.Stat, r.Delivered = "DELIVRD", true
	} else {
		r.Stat = fmt.Sprintf("ERR:%d", b[35])
	}
	return r, nil
}

// Client is the client side of SGIP (the SP's transmitter) as a link.Protocol.
type Client struct {
	Node        uint32 // the SP's node id (3 + area code + corp code in practice)
	LoginName   string
	Password    string
	SPNumber    string
	CorpID      string
	ServiceType string
	Now         func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Name implements link.Protocol.
func (c *Client) Name() string { return "sgip" }

// Login implements link.Protocol: Bind as the SP.
func (c *Client) Login(conn net.Conn, seq uint32, timeout time.Duration) error {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(BindPacket(NewSeq(c.Node, seq, c.now()), LoginSP, c.LoginName, c.Password)); err != nil {
		return err
	}
	p, err := link.ReadPacket(conn, nil, MaxPacket)
	if err != nil {
		return fmt.Errorf("sgip bind: %w", err)
	}
	if Command(p) != BindResp || len(p) < headerLen+1 {
		return errors.New("sgip bind: unexpected answer")
	}
	if r := p[headerLen]; r != ResultOK {
		return &link.LoginError{Protocol: "sgip", Status: uint32(r)}
	}
	return nil
}

// Submit implements link.Protocol; the gateway message id is this submit's sequence number.
func (c *Client) Submit(seq uint32, s link.Submission) ([]byte, error) {
	return SubmitPacket(NewSeq(c.Node, seq, c.now()), SubmitFields{SPNumber: c.SPNumber, Users: []string{"86" + s.Dest},
		CorpID: c.CorpID, ServiceType: c.ServiceType, Report: s.Report, UDHI: s.Segment.UDHI, Coding: s.Segment.Format,
		Content: s.Segment.Data})
}

// Parse implements link.Protocol.
func (c *Client) Parse(p []byte) (link.Packet, error) {
	if len(p) < headerLen {
		return link.Packet{}, errors.New("sgip: short packet")
	}
	s := SeqOf(p)
	pk := link.Packet{Seq: s.N, Raw: p}
	switch Command(p) {
	case SubmitResp:
		if len(p) < headerLen+1 {
			return pk, errors.New("sgip: short Submit_Resp")
		}
		pk.Kind, pk.MsgID, pk.Result = link.KindSubmitResp, s.String(), uint32(p[headerLen])
	case Unbind:
		pk.Kind = link.KindTerminate
	case UnbindResp:
		pk.Kind = link.KindTerminateResp
	}
	return pk, nil
}

// Answer implements link.Protocol: only Unbind reaches the transmitter.
func (c *Client) Answer(pk link.Packet) []byte {
	if pk.Kind == link.KindTerminate {
		return RespPacket(UnbindResp, SeqOf(pk.Raw), 0)
	}
	return nil
}

// ActiveTest implements link.Protocol: SGIP has none (the SMG closes idle links; the
// next submit reconnects).
func (c *Client) ActiveTest(uint32) []byte { return nil }

// Throttled implements link.Protocol.
func (c *Client) Throttled(result uint32) bool { return result == ResultNodeBusy }

// Receiver is the SP's listener the SMG binds to (LoginType 2) to push reports and MOs.
type Receiver struct {
	Name, Password string // what the SMG must present
	// OnReport records a report; Report_Resp is sent only when it returns nil, otherwise
	// the connection is closed so that the SMG sends the report again.
	OnReport func(link.Report) error
	l        net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

// Listen starts the receiver on addr.
func (r *Receiver) Listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.l, r.conns = l, map[net.Conn]bool{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() { r.mu.Lock(); delete(r.conns, c); r.mu.Unlock(); c.Close() }()
				r.serve(c)
			}()
		}
	}()
	return nil
}

// Addr is the listening address.
func (r *Receiver) Addr() string { return r.l.Addr().String() }

// Close stops the receiver.
func (r *Receiver) Close() error {
	err := r.l.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *Receiver) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := link.ReadPacket(c, nil, MaxPacket)
	if err != nil {
		return
	}
	s, typ, name, pw, err := ParseBind(p)
	if err != nil {
		return
	}
	if typ != LoginSMG || name != r.Name || pw != r.Password {
		_, _ = c.Write(RespPacket(BindResp, s, ResultBadLogin))
		return
	}
	if _, err := c.Write(RespPacket(BindResp, s, ResultOK)); err != nil {
		return
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		p, err := link.ReadPacket(c, nil, MaxPacket)
		if err != nil {
			return
		}
		switch Command(p) {
		case Report:
			rep, err := ParseReport(p)
			if err != nil {
				return
			}
			if r.OnReport != nil && r.OnReport(rep) != nil {
				return
			}
			_, _ = c.Write(RespPacket(ReportResp, SeqOf(p), ResultOK))
		case Deliver:
			_, _ = c.Write(RespPacket(DeliverResp, SeqOf(p), ResultOK)) // MOs are not used by the platform
		case Unbind:
			_, _ = c.Write(RespPacket(UnbindResp, SeqOf(p), 0))
			return
		}
	}
}
