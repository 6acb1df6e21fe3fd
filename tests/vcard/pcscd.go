//go:build linux

package vcard

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PCSCD is a pcscd started by a test with a reader.conf.d of its own holding one vpcd
// reader on a free port. pcscd 1.9 takes a config directory (-c) but always serves its
// clients on the one socket /run/pcscd/pcscd.comm (the server ignores
// PCSCLITE_CSOCK_NAME), so only one can run per machine: tests hold an exclusive lock on
// a file in the temporary directory while theirs runs.
type PCSCD struct {
	Addr   string // where the virtual card connects (vpcd's first slot)
	Log    string
	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	lock   *os.File
	out    *os.File
	starts int
}

// StartPCSCD starts pcscd in the foreground (APDU log in the test's temporary directory)
// and stops it by PID when the test ends.
func StartPCSCD(t testing.TB) *PCSCD {
	t.Helper()
	if _, err := exec.LookPath("pcscd"); err != nil {
		t.Fatal("pcscd is not installed: run `infra/scripts/services.sh install` (Debian pcscd, vsmartcard-vpcd)")
	}
	const driver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	if _, err := os.Stat(driver); err != nil {
		t.Fatal("the vpcd driver is not installed (Debian vsmartcard-vpcd)")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "sscard-pcscd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/run/pcscd/pcscd.pid"); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && syscall.Kill(pid, 0) == nil {
			lock.Close()
			t.Fatalf("another pcscd (pid %d) is running; pcscd serves one socket per machine, stop it first", pid)
		}
	}
	port := freePortPair(t)
	p := &PCSCD{Addr: fmt.Sprintf("127.0.0.1:%d", port), t: t, dir: t.TempDir(), lock: lock}
	conf := filepath.Join(p.dir, "reader.conf.d")
	if err := os.MkdirAll(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), fmt.Appendf(nil,
		"FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x%X\nLIBPATH      %s\nCHANNELID    0x%X\n",
		port, driver, port), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Log = filepath.Join(p.dir, "pcscd.log")
	p.Start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("pcscd log (tail):\n%s", b)
		}
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		lock.Close()
	})
	return p
}

// Start starts pcscd (again) and waits until vpcd listens.
func (p *PCSCD) Start() {
	p.t.Helper()
	out, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command("pcscd", "--foreground", "--apdu", "--debug", "-c", filepath.Join(p.dir, "reader.conf.d"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		p.t.Fatal(err)
	}
	p.cmd, p.out = cmd, out
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(p.Log)
		if bytes.Count(b, []byte("daemon ready")) > p.starts {
			break
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("pcscd did not get ready (log %s)", p.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.starts++
}

// Stop stops pcscd by its PID (SIGTERM, then SIGKILL) and waits for it.
func (p *PCSCD) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.out.Close()
	p.cmd = nil
}

// Kill kills pcscd with SIGKILL (a crash): it leaves its socket and pid file behind.
func (p *PCSCD) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.out.Close()
	p.cmd = nil
}

func freePortPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port > 65000 {
			continue
		}
		if l2, err := net.Listen("tcp", fmt.Sprintf(":%d", port+1)); err == nil {
			l2.Close()
			if l3, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err == nil {
				l3.Close()
				return port
			}
		}
	}
	t.Fatal("no free port pair for vpcd")
	return 0
}
