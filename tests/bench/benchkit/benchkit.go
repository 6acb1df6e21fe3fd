// Package benchkit is what the benchmark programs share: running a function the way it
// is deployed (its binary, its stack.yml environment, only the service addresses local)
// and finding free loopback ports.
package benchkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sscard/platform/infra/stack"
)

// Function is a running function process.
type Function struct {
	URL  string
	cmd  *exec.Cmd
	logf *os.File
}

// Start builds functions/<name> into dir and runs it with its stack.yml environment plus
// local (later entries win). Its log goes to dir/<name>.log.
func Start(dir, name string, local ...string) (*Function, error) {
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "./functions/"+name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile("stack.yml")
	if err != nil {
		return nil, err
	}
	f, err := stack.Parse(b, func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	addr := FreeAddr()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range f.Functions[name].Environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(append(cmd.Env, local...), "function_host=127.0.0.1", "function_port="+port)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	fn := &Function{URL: "http://" + addr, cmd: cmd, logf: logf}
	if err := WaitUp(fn.URL + "/_/health"); err != nil {
		fn.Stop()
		log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		return nil, fmt.Errorf("%s did not start: %w\n%s", name, err, log)
	}
	return fn, nil
}

// Stop ends the process.
func (f *Function) Stop() {
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
	f.logf.Close()
}

// FreeAddr is a free loopback address.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitUp waits until every URL answers 200 (20 s at most).
func WaitUp(urls ...string) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, u := range urls {
		for {
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not up", u)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Profile captures a CPU profile of the function serving Go profiles at addr (its
// debug_pprof_addr) for most of d, into dir/name.pprof, in the background. No-op when dir
// is empty.
func Profile(addr, dir, name string, d time.Duration) {
	if dir == "" {
		return
	}
	go func() {
		secs := max(1, int(d.Seconds())-2)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
}
