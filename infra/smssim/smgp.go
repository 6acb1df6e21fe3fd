package smssim

import (
	"crypto/subtle"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/link"
	"github.com/sscard/platform/shared/sms/smgp"
)

// StartSMGP listens on addr as a China Telecom SMGW (SMGP 3.0).
func StartSMGP(addr string, accounts map[string]string) (*Sim, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newSim("smgp", accounts)
	s.l = l
	go s.serve(s.smgpConn)
	return s, nil
}

// smgpID is a 10-octet message id: SMGW code (3, BCD-like), MMDDHHMM (4), sequence (3).
func (s *Sim) smgpID() [10]byte {
	var id [10]byte
	id[0], id[1], id[2] = 0x01, 0x00, 0x99
	n, _ := link.Timestamp(time.Now())
	binary.BigEndian.PutUint32(id[3:7], n/100)
	seq := s.msgSeq.Add(1)
	id[7], id[8], id[9] = byte(seq>>16), byte(seq>>8), byte(seq)
	return id
}

func (s *Sim) smgpConn(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := link.ReadPacket(c, nil, smgp.MaxPacket)
	if err != nil {
		return
	}
	login, err := smgp.ParseLogin(p)
	if err != nil {
		return
	}
	secret, known := s.Accounts[login.ClientID]
	status := uint32(smgp.StatusOK)
	want := smgp.Authenticator(login.ClientID, secret, login.Timestamp)
	if !known || subtle.ConstantTimeCompare(want[:], login.Auth[:]) != 1 {
		status = smgp.StatusAuth
	}
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := c.Write(b)
		return err
	}
	if status != smgp.StatusOK {
		s.Refused.Add(1)
		_ = write(smgp.LoginRespPacket(login.Seq, status, login.Auth, secret))
		return
	}
	s.Logins.Add(1)
	if err := write(smgp.LoginRespPacket(login.Seq, status, login.Auth, secret)); err != nil {
		return
	}
	var seq atomic.Uint32
	var pending acks
	closed := make(chan struct{})
	defer close(closed)
	buf := make([]byte, smgp.MaxPacket)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
		p, err := link.ReadPacket(c, buf, smgp.MaxPacket)
		if err != nil {
			return
		}
		switch binary.BigEndian.Uint32(p[4:]) {
		case smgp.Submit:
			sq, f, err := smgp.ParseSubmit(p)
			if err != nil || len(f.Dest) == 0 {
				return
			}
			if s.c.refuses(f.Dest[0]) {
				_ = write(smgp.SubmitRespPacket(sq, [10]byte{}, smgp.StatusBadDest))
				continue
			}
			switch s.c.next() {
			case throttle:
				s.Throttled.Add(1)
				_ = write(smgp.SubmitRespPacket(sq, [10]byte{}, smgp.StatusBusy))
				continue
			case drop:
				hangUp(c)
				return
			}
			id := s.smgpID()
			seg := sms.Segment{Format: f.Format, UDHI: f.UDHI, Total: f.PkTotal, Number: f.PkNumber, Data: f.Content}
			for _, d := range f.Dest {
				s.keep(login.ClientID, f.SrcTermID, d, seg, smgp.MsgID(id[:]))
			}
			if err := write(smgp.SubmitRespPacket(sq, id, smgp.StatusOK)); err != nil {
				return
			}
			if f.NeedReport {
				if stat, delay, send := s.c.report(f.Dest[0]); send {
					submitted, dest, src := time.Now(), f.Dest[0], f.SrcTermID
					go func() {
						time.Sleep(delay)
						s.deliverReport(&pending, func() uint32 { return seq.Add(1) }, write, func(n uint32) []byte {
							return smgp.ReportPacket(n, id, stat, dest, src, submitted, time.Now())
						}, closed)
					}()
				}
			}
		case smgp.DeliverResp:
			pending.ack(binary.BigEndian.Uint32(p[8:]))
		case smgp.ActiveTest, smgp.Exit:
			if binary.BigEndian.Uint32(p[4:]) == smgp.ActiveTest {
				s.ActiveTests.Add(1)
			}
			pk, _ := smgp.ParsePacket(p)
			_ = write(smgp.AnswerPacket(pk))
			if pk.Kind == link.KindTerminate {
				return
			}
		}
	}
}
