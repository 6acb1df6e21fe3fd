// Package cmpp is China Mobile's CMPP 2.0 and 3.0 (中国移动通信互联网短信网关接口协议): the packet
// layouts of both sides, and the client side as a link.Protocol. Fields follow the
// specification's byte tables; numbers are big-endian, strings are fixed-width octet
// strings padded with NUL.
package cmpp

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/link"
)

// Command ids.
const (
	Connect        uint32 = 0x00000001
	Terminate      uint32 = 0x00000002
	Submit         uint32 = 0x00000004
	Deliver        uint32 = 0x00000005
	ActiveTest     uint32 = 0x00000008
	Resp           uint32 = 0x80000000
	ConnectResp           = Resp | Connect
	TerminateResp         = Resp | Terminate
	SubmitResp            = Resp | Submit
	DeliverResp           = Resp | Deliver
	ActiveTestResp        = Resp | ActiveTest
)

// Versions.
const (
	V20 byte = 0x20
	V30 byte = 0x30
)

// Results of note: 8 is flow control (流量控制错), 13 a bad destination number.
const (
	ResultFlowControl = 8
	ResultBadDest     = 13
)

// Login statuses: 3 is a bad authenticator (wrong secret).
const (
	StatusOK      = 0
	StatusBadAddr = 2
	StatusAuth    = 3
	StatusVersion = 4
)

// MaxPacket bounds a packet (CMPP 3.0's largest submit is 3335 octets).
const MaxPacket = 4096

// Header is 12 octets: total length, command id, sequence id.
const headerLen = 12

// Authenticator is AuthenticatorSource = MD5(Source_Addr + 9×NUL + secret + timestamp).
func Authenticator(account, secret string, ts uint32) [16]byte {
	var b bytes.Buffer
	link.Octets(&b, account, 6)
	b.Write(make([]byte, 9))
	b.WriteString(secret)
	fmt.Fprintf(&b, "%010d", ts)
	return md5.Sum(b.Bytes())
}

// ConnectPacket is CMPP_CONNECT.
func ConnectPacket(seq uint32, account, secret string, version byte, at time.Time) []byte {
	ts, _ := link.Timestamp(at)
	var b bytes.Buffer
	link.Header(&b, Connect, seq)
	link.Octets(&b, account, 6)
	auth := Authenticator(account, secret, ts)
	b.Write(auth[:])
	b.WriteByte(version)
	_ = binary.Write(&b, binary.BigEndian, ts)
	return link.Finish(&b)
}

// Login is a parsed CMPP_CONNECT (server side).
type Login struct {
	Seq       uint32
	Account   string
	Auth      [16]byte
	Version   byte
	Timestamp uint32
}

// ParseConnect reads CMPP_CONNECT.
func ParseConnect(p []byte) (Login, error) {
	if len(p) != headerLen+27 || binary.BigEndian.Uint32(p[4:]) != Connect {
		return Login{}, errors.New("cmpp: not a CONNECT packet")
	}
	var l Login
	l.Seq = binary.BigEndian.Uint32(p[8:])
	body := p[headerLen:]
	l.Account = link.CStr(body[:6])
	copy(l.Auth[:], body[6:22])
	l.Version = body[22]
	l.Timestamp = binary.BigEndian.Uint32(body[23:])
	return l, nil
}

// ConnectRespPacket is CMPP_CONNECT_RESP: status (1 octet in 2.0, 4 in 3.0),
// AuthenticatorISMG = MD5(status + AuthenticatorSource + secret), version.
func ConnectRespPacket(seq uint32, version byte, status uint32, authSrc [16]byte, secret string) []byte {
	var b bytes.Buffer
	link.Header(&b, ConnectResp, seq)
	var st bytes.Buffer
	if version >= V30 {
		_ = binary.Write(&st, binary.BigEndian, status)
	} else {
		st.WriteByte(byte(status))
	}
	b.Write(st.Bytes())
	ism := md5.Sum(append(append(st.Bytes(), authSrc[:]...), secret...))
	b.Write(ism[:])
	b.WriteByte(version)
	return link.Finish(&b)
}

// SubmitFields are the parts of CMPP_SUBMIT the platform sets or the simulator reads.
type SubmitFields struct {
	PkTotal, PkNumber int
	Report            bool
	ServiceID         string
	UDHI              bool
	Format            byte
	MsgSrc            string // SP id
	SrcID             string // SP number shown to the handset
	Dest              []string
	Content           []byte
}

// SubmitPacket is CMPP_SUBMIT in version v.
func SubmitPacket(seq uint32, v byte, f SubmitFields) ([]byte, error) {
	if len(f.Content) > 255 || len(f.Dest) == 0 || len(f.Dest) > 100 {
		return nil, errors.New("cmpp: submit content or destinations out of range")
	}
	termLen := 21
	if v >= V30 {
		termLen = 32
	}
	var b bytes.Buffer
	b.Grow(200 + len(f.Content) + termLen*len(f.Dest))
	link.Header(&b, Submit, seq)
	b.Write(make([]byte, 8)) // Msg_Id, set by the gateway
	b.WriteByte(byte(f.PkTotal))
	b.WriteByte(byte(f.PkNumber))
	b.WriteByte(boolByte(f.Report))
	b.WriteByte(1) // Msg_level
	link.Octets(&b, f.ServiceID, 10)
	b.WriteByte(0)               // Fee_UserType: charge the destination (free notice: FeeType 01)
	link.Octets(&b, "", termLen) // Fee_terminal_Id
	if v >= V30 {
		b.WriteByte(0) // Fee_terminal_type
	}
	b.WriteByte(0) // TP_pId
	b.WriteByte(boolByte(f.UDHI))
	b.WriteByte(f.Format)
	link.Octets(&b, f.MsgSrc, 6)
	link.Octets(&b, "01", 2) // FeeType 01: free
	link.Octets(&b, "0", 6)  // FeeCode
	link.Octets(&b, "", 17)  // ValId_Time: the gateway's default
	link.Octets(&b, "", 17)  // At_Time: now
	link.Octets(&b, f.SrcID, 21)
	b.WriteByte(byte(len(f.Dest)))
	for _, d := range f.Dest {
		link.Octets(&b, d, termLen)
	}
	if v >= V30 {
		b.WriteByte(0) // Dest_terminal_type: real number
	}
	b.WriteByte(byte(len(f.Content)))
	b.Write(f.Content)
	if v >= V30 {
		link.Octets(&b, "", 20) // LinkID
	} else {
		link.Octets(&b, "", 8) // Reserve
	}
	return link.Finish(&b), nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// ParseSubmit reads CMPP_SUBMIT (server side).
func ParseSubmit(p []byte, v byte) (seq uint32, f SubmitFields, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("cmpp: truncated SUBMIT")
		}
	}()
	if binary.BigEndian.Uint32(p[4:]) != Submit {
		return 0, f, errors.New("cmpp: not a SUBMIT packet")
	}
	seq = binary.BigEndian.Uint32(p[8:])
	termLen := 21
	if v >= V30 {
		termLen = 32
	}
	b := p[headerLen+8:]
	f.PkTotal, f.PkNumber, f.Report = int(b[0]), int(b[1]), b[2] == 1
	f.ServiceID = link.CStr(b[4:14])
	b = b[15+termLen:]
	if v >= V30 {
		b = b[1:]
	}
	f.UDHI, f.Format = b[1] == 1, b[2]
	f.MsgSrc = link.CStr(b[3:9])
	b = b[9+2+6+17+17:]
	f.SrcID = link.CStr(b[:21])
	n := int(b[21])
	b = b[22:]
	for range n {
		f.Dest = append(f.Dest, link.CStr(b[:termLen]))
		b = b[termLen:]
	}
	if v >= V30 {
		b = b[1:]
	}
	l := int(b[0])
	f.Content = append([]byte(nil), b[1:1+l]...)
	return seq, f, nil
}

// SubmitRespPacket is CMPP_SUBMIT_RESP: Msg_Id and Result (1 octet in 2.0, 4 in 3.0).
func SubmitRespPacket(seq uint32, v byte, msgID uint64, result uint32) []byte {
	var b bytes.Buffer
	link.Header(&b, SubmitResp, seq)
	_ = binary.Write(&b, binary.BigEndian, msgID)
	if v >= V30 {
		_ = binary.Write(&b, binary.BigEndian, result)
	} else {
		b.WriteByte(byte(result))
	}
	return link.Finish(&b)
}

// ReportPacket is a CMPP_DELIVER carrying a status report for msgID.
func ReportPacket(seq uint32, v byte, msgID uint64, stat, dest, spNumber string, submitted, done time.Time, smscSeq uint32) []byte {
	termLen := 21
	if v >= V30 {
		termLen = 32
	}
	var r bytes.Buffer
	_ = binary.Write(&r, binary.BigEndian, msgID)
	link.Octets(&r, stat, 7)
	link.Octets(&r, submitted.In(sms.ChinaTime).Format("0601021504"), 10)
	link.Octets(&r, done.In(sms.ChinaTime).Format("0601021504"), 10)
	link.Octets(&r, dest, termLen)
	_ = binary.Write(&r, binary.BigEndian, smscSeq)

	var b bytes.Buffer
	link.Header(&b, Deliver, seq)
	_ = binary.Write(&b, binary.BigEndian, uint64(seq)) // the report's own Msg_Id
	link.Octets(&b, spNumber, 21)                       // Dest_Id
	link.Octets(&b, "", 10)                             // Service_Id
	b.WriteByte(0)                                      // TP_pid
	b.WriteByte(0)                                      // TP_udhi
	b.WriteByte(sms.FormatASCII)
	link.Octets(&b, dest, termLen) // Src_terminal_Id
	if v >= V30 {
		b.WriteByte(0) // Src_terminal_type
	}
	b.WriteByte(1) // Registered_Delivery: this is a status report
	b.WriteByte(byte(r.Len()))
	b.Write(r.Bytes())
	if v >= V30 {
		link.Octets(&b, "", 20)
	} else {
		link.Octets(&b, "", 8)
	}
	return link.Finish(&b)
}

// MsgID renders a CMPP Msg_Id as the decimal string stored in records.
func MsgID(id uint64) string { return strconv.FormatUint(id, 10) }

// Client is the client side of CMPP for one account, as a link.Protocol.
type Client struct {
	Account   string // SP 企业代码 (Source_Addr, 6 digits)
	Secret    string
	Version   byte   // V20 or V30
	SrcID     string // SP 接入号 shown as the sender
	ServiceID string
	Now       func() time.Time
}

// Name implements link.Protocol.
func (c *Client) Name() string { return "cmpp" }

// Login implements link.Protocol: CONNECT, then CONNECT_RESP within timeout.
func (c *Client) Login(conn net.Conn, seq uint32, timeout time.Duration) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(ConnectPacket(seq, c.Account, c.Secret, c.version(), now())); err != nil {
		return err
	}
	p, err := link.ReadPacket(conn, nil, MaxPacket)
	if err != nil {
		return fmt.Errorf("cmpp login: %w", err)
	}
	if binary.BigEndian.Uint32(p[4:]) != ConnectResp || len(p) < headerLen+18 {
		return errors.New("cmpp login: unexpected answer")
	}
	var status uint32
	if c.version() >= V30 && len(p) >= headerLen+21 {
		status = binary.BigEndian.Uint32(p[headerLen:])
	} else {
		status = uint32(p[headerLen])
	}
	if status != StatusOK {
		return &link.LoginError{Protocol: "cmpp", Status: status}
	}
	return nil
}

func (c *Client) version() byte {
	if c.Version == 0 {
		return V30
	}
	return c.Version
}

// Submit implements link.Protocol.
func (c *Client) Submit(seq uint32, s link.Submission) ([]byte, error) {
	return SubmitPacket(seq, c.version(), SubmitFields{
		PkTotal: s.Segment.Total, PkNumber: s.Segment.Number, Report: s.Report, ServiceID: c.ServiceID,
		UDHI: s.Segment.UDHI, Format: s.Segment.Format, MsgSrc: c.Account, SrcID: c.SrcID,
		Dest: []string{s.Dest}, Content: s.Segment.Data,
	})
}

// Parse implements link.Protocol.
func (c *Client) Parse(p []byte) (link.Packet, error) {
	return ParsePacket(p, c.version())
}

// ParsePacket classifies a packet (either side).
func ParsePacket(p []byte, v byte) (pk link.Packet, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("cmpp: truncated packet")
		}
	}()
	cmd := binary.BigEndian.Uint32(p[4:])
	pk.Seq = binary.BigEndian.Uint32(p[8:])
	body := p[headerLen:]
	switch cmd {
	case SubmitResp:
		pk.Kind = link.KindSubmitResp
		pk.MsgID = MsgID(binary.BigEndian.Uint64(body))
		if len(body) >= 12 {
			pk.Result = binary.BigEndian.Uint32(body[8:])
		} else {
			pk.Result = uint32(body[8])
		}
	case Deliver:
		pk.Kind = link.KindMO
		pk.MsgID = MsgID(binary.BigEndian.Uint64(body))
		termLen := 21
		if v >= V30 {
			termLen = 32
		}
		b := body[8+21+10+3+termLen:]
		if v >= V30 {
			b = b[1:]
		}
		if b[0] == 1 {
			pk.Kind = link.KindReport
			r := b[2 : 2+int(b[1])]
			pk.Report = link.Report{
				MsgID: MsgID(binary.BigEndian.Uint64(r)), Stat: link.CStr(r[8:15]),
			}
			pk.Report.Delivered = pk.Report.Stat == "DELIVRD"
			if t, err := time.ParseInLocation("0601021504", link.CStr(r[25:35]), sms.ChinaTime); err == nil {
				pk.Report.At = t
			}
			rest := r[35:]
			pk.Report.Dest = link.CStr(rest[:len(rest)-4])
		}
	case ActiveTest:
		pk.Kind = link.KindActiveTest
	case ActiveTestResp:
		pk.Kind = link.KindActiveTestResp
	case Terminate:
		pk.Kind = link.KindTerminate
	case TerminateResp:
		pk.Kind = link.KindTerminateResp
	}
	pk.Raw = p
	return pk, nil
}

// Answer implements link.Protocol.
func (c *Client) Answer(pk link.Packet) []byte {
	return AnswerPacket(pk, c.version())
}

// AnswerPacket is the response to a request packet (either side), nil when none is due.
func AnswerPacket(pk link.Packet, v byte) []byte {
	var b bytes.Buffer
	switch pk.Kind {
	case link.KindReport, link.KindMO:
		link.Header(&b, DeliverResp, pk.Seq)
		b.Write(pk.Raw[headerLen : headerLen+8]) // the DELIVER's Msg_Id
		if v >= V30 {
			b.Write([]byte{0, 0, 0, 0})
		} else {
			b.WriteByte(0)
		}
	case link.KindActiveTest:
		link.Header(&b, ActiveTestResp, pk.Seq)
		b.WriteByte(0)
	case link.KindTerminate:
		link.Header(&b, TerminateResp, pk.Seq)
	default:
		return nil
	}
	return link.Finish(&b)
}

// ActiveTest implements link.Protocol.
func (c *Client) ActiveTest(seq uint32) []byte {
	var b bytes.Buffer
	link.Header(&b, ActiveTest, seq)
	return link.Finish(&b)
}

// TerminatePacket is CMPP_TERMINATE.
func TerminatePacket(seq uint32) []byte {
	var b bytes.Buffer
	link.Header(&b, Terminate, seq)
	return link.Finish(&b)
}

// Throttled implements link.Protocol.
func (c *Client) Throttled(result uint32) bool { return result == ResultFlowControl }
