// Command smssim runs the carrier SMS gateway simulators (package infra/smssim) as the
// local carriers of `make run`: China Mobile's ISMG (CMPP) on -cmpp, China Telecom's SMGW
// (SMGP) on -smgp and China Unicom's SMG (SGIP) on -sgip, which delivers its reports to
// the SP's receiver at -sgip-report-to. One account and secret serve all three. Every
// complete message received is appended to -log as one JSON line (what a handset would
// show). It is a simulator for development and tests: nothing reaches a phone.
//
//	smssim -cmpp 127.0.0.1:7890 -smgp 127.0.0.1:7891 -sgip 127.0.0.1:7892 \
//	  -sgip-report-to 127.0.0.1:7893 -secret-file secret -log received.jsonl
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sscard/platform/infra/smssim"
)

func main() {
	cmppAddr := flag.String("cmpp", "127.0.0.1:7890", "CMPP listen address (\"\" = off)")
	smgpAddr := flag.String("smgp", "", "SMGP listen address (\"\" = off)")
	sgipAddr := flag.String("sgip", "", "SGIP listen address (\"\" = off)")
	reportTo := flag.String("sgip-report-to", "", "the SP's SGIP report receiver")
	reportName := flag.String("sgip-report-name", "smg", "login name presented to the SP's receiver")
	account := flag.String("account", "901234", "account (SP id / client id / login name) the simulators accept")
	secretFile := flag.String("secret-file", "", "file holding the shared secret (required; also the receiver's password)")
	logPath := flag.String("log", "", "append received messages here as JSON lines (default stdout)")
	delay := flag.Duration("report-delay", 500*time.Millisecond, "delay of delivery reports")
	flag.Parse()
	b, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatalf("smssim: -secret-file: %v", err)
	}
	secret := strings.TrimSpace(string(b))
	out := os.Stdout
	if *logPath != "" {
		if out, err = os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
			log.Fatal(err)
		}
	}
	var mu sync.Mutex
	logw := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	accounts := map[string]string{*account: secret}
	var sims []*smssim.Sim
	for _, s := range []struct {
		addr  string
		start func(string, map[string]string) (*smssim.Sim, error)
		what  string
	}{{*cmppAddr, smssim.StartCMPP, "CMPP (China Mobile)"}, {*smgpAddr, smssim.StartSMGP, "SMGP (China Telecom)"},
		{*sgipAddr, smssim.StartSGIP, "SGIP (China Unicom)"}} {
		if s.addr == "" {
			continue
		}
		sim, err := s.start(s.addr, accounts)
		if err != nil {
			log.Fatal(err)
		}
		sim.Log = logw
		sim.DelayReports(*delay)
		if sim.Protocol == "sgip" {
			sim.SetReportTo(smssim.SGIPReportTo{Addr: *reportTo, Name: *reportName, Password: secret})
		}
		sims = append(sims, sim)
		fmt.Fprintf(os.Stderr, "smssim: %s, simulated, on %s\n", s.what, sim.Addr())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	for _, s := range sims {
		_ = s.Close()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
