package smssim

import (
	"bufio"
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
	// Answers are buffered and flushed when no request is waiting to be read, so a busy
	// client gets many answers per system call (as a real ISMG's batching would).
	var wmu sync.Mutex
	bw := bufio.NewWriterSize(c, 32<<10)
	br := bufio.NewReaderSize(c, 32<<10)
	queue := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := bw.Write(b)
		return err
	}
	flush := func() error {
		wmu.Lock()
		defer wmu.Unlock()
		return bw.Flush()
	}
	write := func(b []byte) error {
		if err := queue(b); err != nil {
			return err
		}
		return flush()
	}
	if status != cmpp.StatusOK {
		s.Refused.Add(1)
		_ = write(cmpp.ConnectRespPacket(login.Seq, v, status, login.Auth, secret))
		return
	}
	s.Logins.Add(1)
	if err := write(cmpp.ConnectRespPacket(login.Seq, v, status, login.Auth, secret)); err != nil {
		return
	}
	var seq uint32
	var seqMu sync.Mutex
	nextSeq := func() uint32 { seqMu.Lock(); defer seqMu.Unlock(); seq++; return seq }
	var pending acks
	closed := make(chan struct{})
	defer close(closed)
	buf := make([]byte, cmpp.MaxPacket)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
		if br.Buffered() == 0 && flush() != nil {
			return
		}
		p, err := link.ReadPacket(br, buf, cmpp.MaxPacket)
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
				_ = queue(cmpp.SubmitRespPacket(sq, v, 0, cmpp.ResultFlowControl))
				continue
			case drop:
				_ = flush() // what was accepted is answered; this submit is not
				hangUp(c)
				return
			}
			id := s.newMsgID()
			seg := sms.Segment{Format: f.Format, UDHI: f.UDHI, Total: f.PkTotal, Number: f.PkNumber, Data: f.Content}
			for _, d := range f.Dest {
				s.keep(login.Account, f.SrcID, d, seg, cmpp.MsgID(id))
			}
			if err := queue(cmpp.SubmitRespPacket(sq, v, id, 0)); err != nil {
				return
			}
			if f.Report {
				stat, delay, send := s.c.report(f.Dest[0])
				if send {
					submitted, dest := time.Now(), f.Dest[0]
					go func() {
						time.Sleep(delay)
						s.deliverReport(&pending, nextSeq, write, func(seq uint32) []byte {
							return cmpp.ReportPacket(seq, v, id, stat, dest, f.SrcID, submitted, time.Now(), 0)
						}, closed)
					}()
				}
			}
		case cmpp.DeliverResp:
			pending.ack(binary.BigEndian.Uint32(p[8:]))
		case cmpp.ActiveTest:
			s.ActiveTests.Add(1)
			pk, _ := cmpp.ParsePacket(p, v)
			_ = write(cmpp.AnswerPacket(pk, v))
		case cmpp.Terminate:
			pk, _ := cmpp.ParsePacket(p, v)
			_ = write(cmpp.AnswerPacket(pk, v))
			return
		}
		// ACTIVE_TEST_RESP needs nothing.
	}
}
