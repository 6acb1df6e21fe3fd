package smssim

import (
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sscard/platform/shared/sms"
	"github.com/sscard/platform/shared/sms/link"
	"github.com/sscard/platform/shared/sms/sgip"
)

// SGIPReportTo is where an SGIP simulator delivers reports: the SP's receiver and the
// credentials the SMG presents there.
type SGIPReportTo struct {
	Addr, Name, Password string
}

// StartSGIP listens on addr as a China Unicom SMG (SGIP 1.2). Reports go to the SP's
// receiver named by SetReportTo, over a connection of their own (Bind as SMG, Report,
// Unbind), as SGIP has it.
func StartSGIP(addr string, accounts map[string]string) (*Sim, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newSim("sgip", accounts)
	s.l = l
	go s.serve(s.sgipConn)
	return s, nil
}

// SetReportTo names the SP's receiver (SGIP only).
func (s *Sim) SetReportTo(r SGIPReportTo) { s.mu.Lock(); s.reportTo = r; s.mu.Unlock() }

const simNode = 3010099999

func (s *Sim) sgipConn(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := link.ReadPacket(c, nil, sgip.MaxPacket)
	if err != nil {
		return
	}
	seq, typ, name, pw, err := sgip.ParseBind(p)
	if err != nil {
		return
	}
	want, known := s.Accounts[name]
	if !known || typ != sgip.LoginSP || pw != want {
		s.Refused.Add(1)
		_, _ = c.Write(sgip.RespPacket(sgip.BindResp, seq, sgip.ResultBadLogin))
		return
	}
	s.Logins.Add(1)
	if _, err := c.Write(sgip.RespPacket(sgip.BindResp, seq, sgip.ResultOK)); err != nil {
		return
	}
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Minute))
		p, err := link.ReadPacket(c, nil, sgip.MaxPacket)
		if err != nil {
			return
		}
		switch sgip.Command(p) {
		case sgip.Submit:
			sq, f, err := sgip.ParseSubmit(p)
			if err != nil || len(f.Users) == 0 {
				return
			}
			if s.c.refuses(f.Users[0]) {
				_, _ = c.Write(sgip.RespPacket(sgip.SubmitResp, sq, sgip.ResultBadNumber))
				continue
			}
			switch s.c.next() {
			case throttle:
				s.Throttled.Add(1)
				_, _ = c.Write(sgip.RespPacket(sgip.SubmitResp, sq, sgip.ResultNodeBusy))
				continue
			case drop:
				hangUp(c)
				return
			}
			seg := sms.Segment{Format: f.Coding, UDHI: f.UDHI, Data: f.Content}
			for _, u := range f.Users {
				s.keep(name, f.SPNumber, strings.TrimPrefix(u, "86"), seg, sq.String())
			}
			if _, err := c.Write(sgip.RespPacket(sgip.SubmitResp, sq, sgip.ResultOK)); err != nil {
				return
			}
			if f.Report {
				dest := strings.TrimPrefix(f.Users[0], "86")
				if stat, delay, send := s.c.report(dest); send {
					go s.sgipReport(sq, f.Users[0], stat == "DELIVRD", delay)
				}
			}
		case sgip.Unbind:
			_, _ = c.Write(sgip.RespPacket(sgip.UnbindResp, sgip.SeqOf(p), 0))
			return
		}
	}
}

var sgipReportSeq atomic.Uint32

// sgipReport connects to the SP's receiver and delivers one report, retrying a few times
// while the receiver is unreachable or does not acknowledge.
func (s *Sim) sgipReport(of sgip.Seq, user string, delivered bool, delay time.Duration) {
	time.Sleep(delay)
	s.mu.Lock()
	to := s.reportTo
	s.mu.Unlock()
	if to.Addr == "" {
		return
	}
	var errCode byte
	if !delivered {
		errCode = 21 // 目的地址不可达 in the report error table
	}
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		if s.sgipReportOnce(to, of, user, delivered, errCode) {
			return
		}
	}
}

func (s *Sim) sgipReportOnce(to SGIPReportTo, of sgip.Seq, user string, delivered bool, errCode byte) bool {
	c, err := net.DialTimeout("tcp", to.Addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	next := func() sgip.Seq { return sgip.NewSeq(simNode, sgipReportSeq.Add(1), time.Now()) }
	if _, err := c.Write(sgip.BindPacket(next(), sgip.LoginSMG, to.Name, to.Password)); err != nil {
		return false
	}
	p, err := link.ReadPacket(c, nil, sgip.MaxPacket)
	if err != nil || sgip.Command(p) != sgip.BindResp || p[20] != sgip.ResultOK {
		return false
	}
	if _, err := c.Write(sgip.ReportPacket(next(), of, user, delivered, errCode)); err != nil {
		return false
	}
	p, err = link.ReadPacket(c, nil, sgip.MaxPacket)
	if err != nil || sgip.Command(p) != sgip.ReportResp {
		return false
	}
	_, _ = c.Write(sgip.UnbindPacket(next()))
	_, _ = link.ReadPacket(c, nil, sgip.MaxPacket)
	return true
}
