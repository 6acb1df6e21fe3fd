// Package vcard is a virtual social security card (社保卡) for tests: it plugs into
// pcscd's vsmartcard "vpcd" reader driver over TCP and answers the SSSE application's
// SELECT, GET RESPONSE and READ RECORD APDUs with the EF05/EF06 TLV records of LD/T 32,
// so software under test goes through the real PC/SC stack. It can be told to answer
// malformed records or to vanish (be pulled out) in the middle of a read.
//
// vpcd wire protocol: every message both ways is a 2-byte big-endian length and a payload.
// From vpcd, a 1-byte payload is a control code (0 power off, 1 power on, 2 reset, 4 send
// the ATR); any longer payload is a command APDU, answered with a response APDU. Insertion
// is connecting; removal is closing the connection.
package vcard

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sscard/platform/shared/identity"
	"github.com/sscard/platform/shared/sscard"
)

// DefaultAddr is where vpcd's first slot listens by default (reader.conf CHANNELID 0x8C7B).
const DefaultAddr = "127.0.0.1:35963"

// Profile is what the card holds.
type Profile struct {
	IdentificationCode [16]byte
	CardType           byte
	SpecVersion        string
	IssueDate          time.Time
	ExpiryDate         time.Time
	CardNo             string
	SSN                string
	Name               string // UTF-8; written to the card in GB18030
	Sex                byte
	Ethnicity          byte // BCD
	BirthDate          time.Time
}

// Sample is a realistic third-generation card numbered n: region 330300, a valid SSN
// (MOD 11-2 check character) whose birth date matches, a rare-character name when n is odd.
func Sample(n int) Profile {
	birth := time.Date(1980+n%30, time.Month(1+n%12), 1+n%28, 0, 0, 0, 0, sscard.China)
	body := fmt.Sprintf("330302%s%03d", birth.Format("20060102"), n%1000)
	check, _ := identity.CheckChar(body)
	name := "张三"
	if n%2 == 1 {
		name = "王䶮" // 䶮 needs a GB18030 four-byte code
	}
	var ic [16]byte
	copy(ic[:], []byte{0x33, 0x03, 0x00, 0xD1, 0x56, 0x00, 0x00, 0x05})
	binary.BigEndian.PutUint32(ic[8:], uint32(n))
	copy(ic[12:], []byte{0xFF, 0xFF, 0xFF, 0xFF})
	return Profile{
		IdentificationCode: ic, CardType: '3', SpecVersion: "3.00",
		IssueDate:  time.Date(2024, 3, 15, 0, 0, 0, 0, sscard.China),
		ExpiryDate: time.Date(2034, 3, 15, 0, 0, 0, 0, sscard.China),
		CardNo:     fmt.Sprintf("B%08d", n), SSN: body + string(check), Name: name,
		Sex: '1' + byte(n%2), Ethnicity: 0x01, BirthDate: birth,
	}
}

// FaultKind is a way the card misbehaves.
type FaultKind int

const (
	NoFault   FaultKind = iota
	Short               // the record's value is 3 bytes shorter than its length byte says
	WrongTag            // the record carries another tag
	BadValue            // the record's value is not valid content (bad GBK, bad BCD date…)
	Vanish              // the card is pulled out when the record is asked for: no answer
	Overlong            // two bytes beyond the TLV
	StatusErr           // the card answers 6A83 (record not found)
)

// Fault makes the card misbehave when Field is read.
type Fault struct {
	Kind  FaultKind
	Field sscard.Field
}

// Card is one virtual card.
type Card struct {
	ATR []byte

	mu       sync.Mutex
	p        Profile
	records  map[[2]byte][]byte // (SFI, record) → TLV
	fault    Fault
	selected bool
	pending  []byte // GET RESPONSE data
	conn     net.Conn
	removed  bool
	done     chan struct{}
	reads    atomic.Int64 // READ RECORD commands answered
	sessions atomic.Int64 // connections made to vpcd
}

// New makes a card holding p.
func New(p Profile) (*Card, error) {
	c := &Card{ATR: atr([]byte("SSSE-3.0"))}
	return c, c.SetProfile(p)
}

// SetProfile replaces what the card holds (a different card in the same test).
func (c *Card) SetProfile(p Profile) error {
	name, err := sscard.EncodeName(p.Name)
	if err != nil {
		return err
	}
	rec := map[sscard.Field][]byte{
		sscard.IdentCode: p.IdentificationCode[:], sscard.CardType: {p.CardType},
		sscard.SpecVersion: []byte(p.SpecVersion), sscard.IssueDate: sscard.EncodeBCDDate(p.IssueDate),
		sscard.ExpiryDate: sscard.EncodeBCDDate(p.ExpiryDate), sscard.CardNo: []byte(p.CardNo),
		sscard.SSN: []byte(p.SSN), sscard.Name: name, sscard.Sex: {p.Sex}, sscard.Ethnicity: {p.Ethnicity},
		sscard.BirthDate: sscard.EncodeBCDDate(p.BirthDate),
	}
	records := map[[2]byte][]byte{}
	for f, v := range rec {
		if len(v) != f.Len {
			return fmt.Errorf("vcard: %s is %d bytes, the record holds %d", f.Name, len(v), f.Len)
		}
		r := f.Record
		if f == sscard.Sex && p.SpecVersion[0] == '1' {
			r = 3
		}
		records[[2]byte{f.SFI, r}] = sscard.EncodeRecord(f, v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p, c.records = p, records
	return nil
}

// SetFault makes the card misbehave from now on (NoFault to stop).
func (c *Card) SetFault(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = f
}

// Reads is the number of READ RECORD commands the card has answered.
func (c *Card) Reads() int64 { return c.reads.Load() }

// Sessions is the number of times the card connected to vpcd.
func (c *Card) Sessions() int64 { return c.sessions.Load() }

// Respond answers one command APDU; vanish says the card leaves instead of answering.
func (c *Card) Respond(apdu []byte) (rsp []byte, vanish bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(apdu) < 4 {
		return sw(0x6700), false
	}
	cla, ins, p1, p2 := apdu[0], apdu[1], apdu[2], apdu[3]
	if cla != 0x00 {
		return sw(0x6E00), false
	}
	body, le := lcData(apdu)
	switch ins {
	case 0xA4: // SELECT
		switch {
		case p1 == 0x04 && bytes.Equal(body, sscard.AID):
			c.selected = true
			fci := append([]byte{0x6F, byte(len(sscard.AID) + 2), 0x84, byte(len(sscard.AID))}, sscard.AID...)
			c.pending = fci
			return []byte{0x61, byte(len(fci))}, false // T=0 style: fetch the FCI with GET RESPONSE
		case p1 == 0x04:
			c.selected = false
			return sw(0x6A82), false
		case p1 == 0x02 || p1 == 0x00:
			if c.selected && len(body) == 2 && body[0] == 0xEF && (body[1] == 0x05 || body[1] == 0x06) {
				return sw(0x9000), false
			}
			return sw(0x6A82), false
		}
		return sw(0x6A86), false
	case 0xC0: // GET RESPONSE
		if c.pending == nil {
			return sw(0x6985), false
		}
		out := append(c.pending, 0x90, 0x00)
		c.pending = nil
		return out, false
	case 0x84: // GET CHALLENGE
		r := make([]byte, 8)
		_, _ = rand.Read(r)
		return append(r, 0x90, 0x00), false
	case 0xB2: // READ RECORD
		if !c.selected {
			return sw(0x6985), false
		}
		if p2&0x07 != 0x04 {
			return sw(0x6A86), false
		}
		sfi := p2 >> 3
		tlv, ok := c.records[[2]byte{sfi, p1}]
		if !ok {
			return sw(0x6A83), false
		}
		c.reads.Add(1)
		tlv = bytes.Clone(tlv)
		if f := c.fault; f.Kind != NoFault && f.Field.SFI == sfi && f.Field.Tag == tlv[0] {
			switch f.Kind {
			case Vanish:
				return nil, true
			case Short:
				tlv = tlv[:len(tlv)-3]
			case WrongTag:
				tlv[0] ^= 0x40
			case BadValue:
				tlv[2] = 0x81 // neither GBK nor BCD nor a code
				if len(tlv) > 3 {
					tlv[3] = 0x7F
				}
			case Overlong:
				tlv = append(tlv, 0x00, 0x00)
			case StatusErr:
				return sw(0x6A83), false
			}
		}
		if le != 0 && le != len(tlv) {
			return []byte{0x6C, byte(len(tlv))}, false
		}
		return append(tlv, 0x90, 0x00), false
	}
	return sw(0x6D00), false
}

// Insert puts the card into the vpcd reader at addr (DefaultAddr when empty). While it is
// in, a dropped connection (pcscd restarting) is made again, as a card left in a reader
// is seen again by a restarted pcscd.
func (c *Card) Insert(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.removed, c.conn, c.done = false, conn, make(chan struct{})
	done := c.done
	c.mu.Unlock()
	go func() {
		defer close(done)
		for {
			c.sessions.Add(1)
			c.serve(conn)
			for {
				c.mu.Lock()
				removed := c.removed
				c.mu.Unlock()
				if removed {
					return
				}
				time.Sleep(100 * time.Millisecond)
				if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
					break
				}
			}
			c.mu.Lock()
			if c.removed {
				c.mu.Unlock()
				conn.Close()
				return
			}
			c.conn = conn
			c.mu.Unlock()
		}
	}()
	return nil
}

// Remove takes the card out of the reader.
func (c *Card) Remove() {
	c.mu.Lock()
	c.removed = true
	conn, done := c.conn, c.done
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if done != nil {
		<-done
	}
}

func (c *Card) serve(conn net.Conn) {
	defer conn.Close()
	for {
		msg, err := readFrame(conn)
		if err != nil {
			return
		}
		var out []byte
		if len(msg) == 1 {
			switch msg[0] {
			case 0x00, 0x01, 0x02: // power off, on, reset: the application is deselected
				c.mu.Lock()
				c.selected, c.pending = false, nil
				c.mu.Unlock()
				continue
			case 0x04:
				out = c.ATR
			default:
				continue
			}
		} else {
			var vanish bool
			if out, vanish = c.Respond(msg); vanish {
				c.mu.Lock()
				c.removed = true
				c.mu.Unlock()
				return
			}
		}
		if err := writeFrame(conn, out); err != nil {
			return
		}
	}
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("vcard: empty frame")
	}
	return b, nil
}

func writeFrame(w io.Writer, b []byte) error {
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}

func sw(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// lcData splits a short APDU into its data and Le (0 when absent).
func lcData(apdu []byte) (data []byte, le int) {
	switch {
	case len(apdu) == 4:
		return nil, 0
	case len(apdu) == 5:
		return nil, int(apdu[4])
	}
	lc := int(apdu[4])
	if len(apdu) < 5+lc {
		return nil, 0
	}
	data = apdu[5 : 5+lc]
	if len(apdu) > 5+lc {
		le = int(apdu[5+lc])
	}
	return data, le
}

// atr is a T=1 answer-to-reset with the given historical bytes and its TCK.
func atr(hist []byte) []byte {
	a := append([]byte{0x3B, 0x80 | byte(len(hist)), 0x80, 0x01}, hist...)
	var tck byte
	for _, b := range a[1:] {
		tck ^= b
	}
	return append(a, tck)
}
