// Command smssim runs the carrier SMS gateway simulator (package infra/smssim) as the local
// carriers of `make run`: a China Mobile ISMG speaking CMPP on -cmpp. Every complete
// message it receives is appended to -log as one JSON line (what a handset would show).
// It is a simulator for development and tests: nothing reaches a phone.
//
//	smssim -cmpp 127.0.0.1:7890 -account 901234 -secret-file secret -log received.jsonl
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sscard/platform/infra/smssim"
)

func main() {
	cmppAddr := flag.String("cmpp", "127.0.0.1:7890", "CMPP listen address")
	account := flag.String("account", "901234", "SP id (Source_Addr) the simulator accepts")
	secretFile := flag.String("secret-file", "", "file holding the shared secret (required)")
	logPath := flag.String("log", "", "append received messages here as JSON lines (default stdout)")
	delay := flag.Duration("report-delay", 500*time.Millisecond, "delay of delivery reports")
	flag.Parse()
	b, err := os.ReadFile(*secretFile)
	if err != nil {
		log.Fatalf("smssim: -secret-file: %v", err)
	}
	out := os.Stdout
	if *logPath != "" {
		if out, err = os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
			log.Fatal(err)
		}
	}
	sim, err := smssim.StartCMPP(*cmppAddr, map[string]string{*account: strings.TrimSpace(string(b))})
	if err != nil {
		log.Fatal(err)
	}
	sim.Log = out
	sim.DelayReports(*delay)
	fmt.Fprintf(os.Stderr, "smssim: CMPP (China Mobile, simulated) on %s\n", sim.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	_ = sim.Close()
}
