package smssim

import (
	"crypto/subtle"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/cmpp"
	"github.com/sscard/platform/shared/sms/link"
)

// StartCMPP listens on addr ("127.0.0.1:0" for any port) as a China Mobile ISMG.
func StartCMPP(addr string, accounts map[string]string) (*Sim, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newSim("cmpp", accounts)
	s.l = l
	go s.serve(s.cmppConn)
	return s, nil
}

func (s *Sim) cmppConn(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := link.ReadPacket(c, nil, cmpp.MaxPacket)
	if err != nil {
		return
	}
	login, err := cmpp.ParseConnect(p)
	if err != nil {
		return
	}
	v := login.Version
	if v != cmpp.V30 && v != 0x21 {
		v = cmpp.V20
	}
	secret, known := s.Accounts[login.Account]
	status := uint32(cmpp.StatusOK)
	switch {
	case !known:
		status = cmpp.StatusBadAddr
	case login.Version > cmpp.V30:
		status = cmpp.StatusVersion
	default:
		want := cmpp.Authenticator(login.Account, secret, login.Timestamp)
		if subtle.ConstantTimeCompare(want[:], login.Auth[:]) != 1 {
			status = cmpp.StatusAuth
		}
	}
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := c.Write(b)
		return err
	}
	if err := write(cmpp.ConnectRespPacket(login.Seq, v, status, login.Auth, secret)); err != nil || status != cmpp.StatusOK {
		s.Refused.Add(1)
		return
	}
	s.Logins.Add(1)
	var seq uint32
	var seqMu sync.Mutex
	nextSeq := func() uint32 { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	buf := make([]byte, cmpp.MaxPacket)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
		p, err := link.ReadPacket(c, buf, cmpp.MaxPacket)
		if err != nil {
			return
		}
		switch binary.BigEndian.Uint32(p[4:]) {
		case cmpp.Submit:
			sq, f, err := cmpp.ParseSubmit(p, v)
			if err != nil || len(f.Dest) == 0 {
				return
			}
			if s.c.refuses(f.Dest[0]) {
				_ = write(cmpp.SubmitRespPacket(sq, v, 0, cmpp.ResultBadDest))
				continue
			}
			switch s.c.next() {
			case throttle:
				s.Throttled.Add(1)
				_ = write(cmpp.SubmitRespPacket(sq, v, 0, cmpp.ResultFlowControl))
				continue
			case drop:
				return
			}
			id := s.newMsgID()
			seg := sms.Segment{Format: f.Format, UDHI: f.UDHI, Total: f.PkTotal, Number: f.PkNumber, Data: f.Content}
			for _, d := range f.Dest {
				s.keep(login.Account, f.SrcID, d, seg, cmpp.MsgID(id))
			}
			if err := write(cmpp.SubmitRespPacket(sq, v, id, 0)); err != nil {
				return
			}
			if f.Report {
				stat, delay, send := s.c.report(f.Dest[0])
				if send {
					submitted, dest := time.Now(), f.Dest[0]
					go func() {
						time.Sleep(delay)
						_ = write(cmpp.ReportPacket(nextSeq(), v, id, stat, dest, f.SrcID, submitted, time.Now(), 0))
					}()
				}
			}
		case cmpp.ActiveTest:
			pk, _ := cmpp.ParsePacket(p, v)
			_ = write(cmpp.AnswerPacket(pk, v))
		case cmpp.Terminate:
			pk, _ := cmpp.ParsePacket(p, v)
			_ = write(cmpp.AnswerPacket(pk, v))
			return
		}
		// DELIVER_RESP and ACTIVE_TEST_RESP need nothing.
	}
}
