// Package smgp is China Telecom's SMGP 3.0 (中国电信短消息网关协议): the packet layouts of
// both sides and the client side as a link.Protocol. Like CMPP: a 12-octet header,
// big-endian numbers, NUL-padded octet strings; unlike it: 10-octet message ids, a fixed
// 122-octet status report text, and optional TLVs after a packet's fixed body (which
// carry TP_udhi and the long-message part numbers).
package smgp

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/link"
)

// Request ids.
const (
	Login          uint32 = 0x00000001
	Submit         uint32 = 0x00000002
	Deliver        uint32 = 0x00000003
	ActiveTest     uint32 = 0x00000004
	Exit           uint32 = 0x00000006
	Resp           uint32 = 0x80000000
	LoginResp             = Resp | Login
	SubmitResp            = Resp | Submit
	DeliverResp           = Resp | Deliver
	ActiveTestResp        = Resp | ActiveTest
	ExitResp              = Resp | Exit
)

// Version is the client version sent at login (3.0).
const Version byte = 0x30

// Login modes.
const (
	ModeSend     = 0
	ModeReceive  = 1
	ModeTransmit = 2
)

// Statuses of note. 0 success; 1 system busy (treated as flow control); 21 authentication
// failed; 47 illegal destination number (treated as "not this carrier's number"). The
// numbering follows the SMGP 3.0 status table as we know it; 1 and 47 are not confirmed
// against a live SMGW.
const (
	StatusOK       = 0
	StatusBusy     = 1
	StatusAuth     = 21
	StatusBadDest  = 47
	StatusBadLogin = 20
)

// TLV tags used here.
const (
	TagTPUdhi   uint16 = 0x0002
	TagPkTotal  uint16 = 0x0009
	TagPkNumber uint16 = 0x000A
)

// MaxPacket bounds a packet.
const MaxPacket = 4096

const headerLen = 12

// Authenticator is AuthenticatorClient = MD5(ClientID + 7×NUL + secret + timestamp).
func Authenticator(clientID, secret string, ts uint32) [16]byte {
	var b bytes.Buffer
	link.Octets(&b, clientID, 8)
	b.Write(make([]byte, 7))
	b.WriteString(secret)
	fmt.Fprintf(&b, "%010d", ts)
	return md5.Sum(b.Bytes())
}

// LoginPacket is Login in transmit mode.
func LoginPacket(seq uint32, clientID, secret string, at time.Time) []byte {
	ts, _ := link.Timestamp(at)
	var b bytes.Buffer
	link.Header(&b, Login, seq)
	link.Octets(&b, clientID, 8)
	a := Authenticator(clientID, secret, ts)
	b.Write(a[:])
	b.WriteByte(ModeTransmit)
	_ = binary.Write(&b, binary.BigEndian, ts)
	b.WriteByte(Version)
	return link.Finish(&b)
}

// LoginReq is a parsed Login (server side).
type LoginReq struct {
	Seq       uint32
	ClientID  string
	Auth      [16]byte
	Mode      byte
	Timestamp uint32
	Version   byte
}

// ParseLogin reads Login.
func ParseLogin(p []byte) (LoginReq, error) {
	if len(p) != headerLen+30 || binary.BigEndian.Uint32(p[4:]) != Login {
		return LoginReq{}, errors.New("smgp: not a Login packet")
	}
	b := p[headerLen:]
	var l LoginReq
	l.Seq = binary.BigEndian.Uint32(p[8:])
	l.ClientID = link.CStr(b[:8])
	copy(l.Auth[:], b[8:24])
	l.Mode = b[24]
	l.Timestamp = binary.BigEndian.Uint32(b[25:29])
	l.Version = b[29]
	return l, nil
}

// LoginRespPacket is Login_Resp: Status, AuthenticatorServer = MD5(Status + AuthenticatorClient + secret), version.
func LoginRespPacket(seq, status uint32, authClient [16]byte, secret string) []byte {
	var b bytes.Buffer
	link.Header(&b, LoginResp, seq)
	var st [4]byte
	binary.BigEndian.PutUint32(st[:], status)
	b.Write(st[:])
	a := md5.Sum(append(append(st[:], authClient[:]...), secret...))
	b.Write(a[:])
	b.WriteByte(Version)
	return link.Finish(&b)
}

// SubmitFields are the parts of Submit the platform sets or the simulator reads.
type SubmitFields struct {
	NeedReport        bool
	ServiceID         string
	Format            byte
	SrcTermID         string
	Dest              []string
	Content           []byte
	UDHI              bool
	PkTotal, PkNumber int
}

// SubmitPacket is Submit (MsgType 6: MT).
func SubmitPacket(seq uint32, f SubmitFields) ([]byte, error) {
	if len(f.Content) > 255 || len(f.Dest) == 0 || len(f.Dest) > 100 {
		return nil, errors.New("smgp: submit content or destinations out of range")
	}
	var b bytes.Buffer
	link.Header(&b, Submit, seq)
	b.WriteByte(6) // MsgType: MT
	b.WriteByte(boolByte(f.NeedReport))
	b.WriteByte(1) // Priority
	link.Octets(&b, f.ServiceID, 10)
	link.Octets(&b, "00", 2) // FeeType: free
	link.Octets(&b, "0", 6)  // FeeCode
	link.Octets(&b, "0", 6)  // FixedFee
	b.WriteByte(f.Format)
	link.Octets(&b, "", 17) // ValidTime
	link.Octets(&b, "", 17) // AtTime
	link.Octets(&b, f.SrcTermID, 21)
	link.Octets(&b, "", 21) // ChargeTermID
	b.WriteByte(byte(len(f.Dest)))
	for _, d := range f.Dest {
		link.Octets(&b, d, 21)
	}
	b.WriteByte(byte(len(f.Content)))
	b.Write(f.Content)
	link.Octets(&b, "", 8) // Reserve
	if f.UDHI {
		tlv(&b, TagTPUdhi, []byte{1})
	}
	if f.PkTotal > 1 {
		tlv(&b, TagPkTotal, []byte{byte(f.PkTotal)})
		tlv(&b, TagPkNumber, []byte{byte(f.PkNumber)})
	}
	return link.Finish(&b), nil
}

func tlv(b *bytes.Buffer, tag uint16, v []byte) {
	_ = binary.Write(b, binary.BigEndian, tag)
	_ = binary.Write(b, binary.BigEndian, uint16(len(v)))
	b.Write(v)
}

func readTLVs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for len(b) >= 4 {
		tag, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			break
		}
		out[tag] = b[4 : 4+l]
		b = b[4+l:]
	}
	return out
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// ParseSubmit reads Submit (server side).
func ParseSubmit(p []byte) (seq uint32, f SubmitFields, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("smgp: truncated Submit")
		}
	}()
	if binary.BigEndian.Uint32(p[4:]) != Submit {
		return 0, f, errors.New("smgp: not a Submit packet")
	}
	seq = binary.BigEndian.Uint32(p[8:])
	b := p[headerLen:]
	f.NeedReport = b[1] == 1
	f.ServiceID = link.CStr(b[3:13])
	b = b[13+2+6+6:]
	f.Format = b[0]
	b = b[1+17+17:]
	f.SrcTermID = link.CStr(b[:21])
	b = b[42:]
	n := int(b[0])
	b = b[1:]
	for range n {
		f.Dest = append(f.Dest, link.CStr(b[:21]))
		b = b[21:]
	}
	l := int(b[0])
	f.Content = append([]byte(nil), b[1:1+l]...)
	t := readTLVs(b[1+l+8:])
	f.UDHI = len(t[TagTPUdhi]) == 1 && t[TagTPUdhi][0] == 1
	f.PkTotal, f.PkNumber = 1, 1
	if v := t[TagPkTotal]; len(v) == 1 {
		f.PkTotal = int(v[0])
	}
	if v := t[TagPkNumber]; len(v) == 1 {
		f.PkNumber = int(v[0])
	}
	return seq, f, nil
}

// MsgID renders a 10-octet SMGP message id as the hex string stored in records.
func MsgID(b []byte) string { return hex.EncodeToString(b) }

// SubmitRespPacket is Submit_Resp: MsgID(10), Status(4).
func SubmitRespPacket(seq uint32, msgID [10]byte, status uint32) []byte {
	var b bytes.Buffer
	link.Header(&b, SubmitResp, seq)
	b.Write(msgID[:])
	_ = binary.Write(&b, binary.BigEndian, status)
	return link.Finish(&b)
}

// ReportPacket is a Deliver carrying the status report of msgID (IsReport 1).
func ReportPacket(seq uint32, msgID [10]byte, stat, dest, spNumber string, submitted, done time.Time) []byte {
	var r bytes.Buffer
	r.WriteString("id:")
	r.Write(msgID[:])
	dl := "001"
	if stat != "DELIVRD" {
		dl = "000"
	}
	fmt.Fprintf(&r, " sub:001 dlvrd:%s Submit date:%s done date:%s stat:", dl,
		submitted.In(sms.ChinaTime).Format("0601021504"), done.In(sms.ChinaTime).Format("0601021504"))
	link.Octets(&r, stat, 7)
	r.WriteString(" err:000 Text:")
	link.Octets(&r, "", 20)

	var b bytes.Buffer
	link.Header(&b, Deliver, seq)
	var own [10]byte
	binary.BigEndian.PutUint32(own[6:], seq)
	b.Write(own[:])
	b.WriteByte(1) // IsReport
	b.WriteByte(sms.FormatASCII)
	link.Octets(&b, done.In(sms.ChinaTime).Format("20060102150405"), 14)
	link.Octets(&b, dest, 21)     // SrcTermID: the handset
	link.Octets(&b, spNumber, 21) // DestTermID: the SP
	b.WriteByte(byte(r.Len()))
	b.Write(r.Bytes())
	link.Octets(&b, "", 8)
	return link.Finish(&b)
}

// ParsePacket classifies a packet (either side).
func ParsePacket(p []byte) (pk link.Packet, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("smgp: truncated packet")
		}
	}()
	cmd := binary.BigEndian.Uint32(p[4:])
	pk.Seq = binary.BigEndian.Uint32(p[8:])
	pk.Raw = p
	body := p[headerLen:]
	switch cmd {
	case SubmitResp:
		pk.Kind = link.KindSubmitResp
		pk.MsgID = MsgID(body[:10])
		pk.Result = binary.BigEndian.Uint32(body[10:])
	case Deliver:
		pk.Kind = link.KindMO
		if body[10] == 1 {
			pk.Kind = link.KindReport
			content := body[10+1+1+14+21+21+1:]
			content = content[:body[10+1+1+14+21+21]]
			if len(content) < 122 || string(content[:3]) != "id:" {
				return pk, errors.New("smgp: bad status report")
			}
			text := string(content[13:])
			stat := ""
			if i := strings.Index(text, "stat:"); i >= 0 && i+12 <= len(text) {
				stat = link.CStr([]byte(text[i+5 : i+12]))
			}
			pk.Report = link.Report{MsgID: MsgID(content[3:13]), Stat: stat, Delivered: stat == "DELIVRD",
				Dest: link.CStr(body[10+1+1+14 : 10+1+1+14+21])}
			if i := strings.Index(text, "done date:"); i >= 0 && i+20 <= len(text) {
				if t, err := time.ParseInLocation("0601021504", text[i+10:i+20], sms.ChinaTime); err == nil {
					pk.Report.At = t
				}
			}
		}
	case ActiveTest:
		pk.Kind = link.KindActiveTest
	case ActiveTestResp:
		pk.Kind = link.KindActiveTestResp
	case Exit:
		pk.Kind = link.KindTerminate
	case ExitResp:
		pk.Kind = link.KindTerminateResp
	}
	return pk, nil
}

// AnswerPacket is the response to a request packet (either side), nil when none is due.
func AnswerPacket(pk link.Packet) []byte {
	var b bytes.Buffer
	switch pk.Kind {
	case link.KindReport, link.KindMO:
		link.Header(&b, DeliverResp, pk.Seq)
		b.Write(pk.Raw[headerLen : headerLen+10])
		b.Write([]byte{0, 0, 0, 0})
	case link.KindActiveTest:
		link.Header(&b, ActiveTestResp, pk.Seq)
	case link.KindTerminate:
		link.Header(&b, ExitResp, pk.Seq)
	default:
		return nil
	}
	return link.Finish(&b)
}

// Client is the client side of SMGP for one account, as a link.Protocol.
type Client struct {
	ClientID  string
	Secret    string
	SrcTermID string // SP number shown as the sender
	ServiceID string
	Now       func() time.Time
}

// Name implements link.Protocol.
func (c *Client) Name() string { return "smgp" }

// Login implements link.Protocol.
func (c *Client) Login(conn net.Conn, seq uint32, timeout time.Duration) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write(LoginPacket(seq, c.ClientID, c.Secret, now())); err != nil {
		return err
	}
	p, err := link.ReadPacket(conn, nil, MaxPacket)
	if err != nil {
		return fmt.Errorf("smgp login: %w", err)
	}
	if binary.BigEndian.Uint32(p[4:]) != LoginResp || len(p) < headerLen+21 {
		return errors.New("smgp login: unexpected answer")
	}
	if st := binary.BigEndian.Uint32(p[headerLen:]); st != StatusOK {
		return &link.LoginError{Protocol: "smgp", Status: st}
	}
	return nil
}

// Submit implements link.Protocol.
func (c *Client) Submit(seq uint32, s link.Submission) ([]byte, error) {
	return SubmitPacket(seq, SubmitFields{NeedReport: s.Report, ServiceID: c.ServiceID, Format: s.Segment.Format,
		SrcTermID: c.SrcTermID, Dest: []string{s.Dest}, Content: s.Segment.Data, UDHI: s.Segment.UDHI,
		PkTotal: s.Segment.Total, PkNumber: s.Segment.Number})
}

// Parse implements link.Protocol.
func (c *Client) Parse(p []byte) (link.Packet, error) { return ParsePacket(p) }

// Answer implements link.Protocol.
func (c *Client) Answer(pk link.Packet) []byte { return AnswerPacket(pk) }

// ActiveTest implements link.Protocol.
func (c *Client) ActiveTest(seq uint32) []byte {
	var b bytes.Buffer
	link.Header(&b, ActiveTest, seq)
	return link.Finish(&b)
}

// Throttled implements link.Protocol.
func (c *Client) Throttled(status uint32) bool { return status == StatusBusy }
