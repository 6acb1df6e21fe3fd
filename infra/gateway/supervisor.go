package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sscard/platform/infra/stack"
)

// supervisor runs one process per function, like a kubelet with one replica each:
// it restarts a process that dies, and scaling to zero stops it.
type supervisor struct {
	log   *slog.Logger
	fns   map[string]*process
	order []string
}

type process struct {
	name string
	// fixedPort is the port from -base-port; 0 when the gateway picks a free one at every
	// start (tests: a fixed port can be taken by another process between runs or
	// restarts, and a restart on it would then fail forever).
	fixedPort int
	port      atomic.Int32 // the port the running process listens on
	bin       string
	env       []string
	logPath   string
	spec      stack.Function
	log       *slog.Logger

	mu       sync.Mutex
	want     bool // desired replicas > 0
	cmd      *exec.Cmd
	exited   chan struct{}
	restarts int
}

func newSupervisor(f *stack.File, o Options, environ []string, log *slog.Logger) *supervisor {
	s := &supervisor{log: log, fns: map[string]*process{}}
	for i, name := range f.Names() {
		if len(o.Functions) > 0 && !slices.Contains(o.Functions, name) {
			continue
		}
		spec := f.Functions[name]
		p := &process{name: name, bin: filepath.Join(o.BinDir, name), spec: spec,
			logPath: filepath.Join(o.LogDir, name+".log"), log: log.With("function", name)}
		if o.BasePort > 0 {
			p.fixedPort = o.BasePort + i
		}
		p.env = append([]string{}, environ...)
		for k, v := range spec.Environment {
			p.env = append(p.env, k+"="+v)
		}
		// Local overrides come last so they win over stack.yml.
		// (function_port is added at each start.)
		p.env = append(p.env, "function_host=127.0.0.1", "healthcheck_interval="+o.Drain.String())
		s.fns[name] = p
		s.order = append(s.order, name)
	}
	return s
}

func (s *supervisor) names() []string { return s.order }

func (s *supervisor) get(name string) (*process, bool) {
	p, ok := s.fns[name]
	return p, ok
}

// startAll starts every function and waits until each answers its health route.
func (s *supervisor) startAll(ctx context.Context) error {
	var errs []error
	for _, name := range s.order {
		if err := s.fns[name].scale(ctx, 1); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *supervisor) stopAll() {
	var wg sync.WaitGroup
	for _, p := range s.fns {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.scale(context.Background(), 0) }()
	}
	wg.Wait()
}

// replicas reports 1 when the process runs and answers, else 0.
func (p *process) replicas() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.want {
		return 1
	}
	return 0
}

func (p *process) url() string { return "http://" + p.host() }

func (p *process) host() string { return "127.0.0.1:" + strconv.Itoa(int(p.port.Load())) }

// nextPort is the port for the next start: the fixed one, or a free one now.
func (p *process) nextPort() (int, error) {
	if p.fixedPort > 0 {
		return p.fixedPort, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scale sets the desired replicas (0 or 1 locally) and waits until it holds.
func (p *process) scale(ctx context.Context, n int) error {
	p.mu.Lock()
	p.want = n > 0
	running := p.cmd != nil
	exited := p.exited
	p.mu.Unlock()
	switch {
	case n > 0 && !running:
		if err := p.spawn(); err != nil {
			return err
		}
		return p.waitHealthy(ctx, 30*time.Second)
	case n == 0 && running:
		p.mu.Lock()
		cmd := p.cmd
		p.mu.Unlock()
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return nil
}

func (p *process) spawn() error {
	if _, err := os.Stat(p.bin); err != nil {
		return fmt.Errorf("%s: binary %s missing (run make build): %w", p.name, p.bin, err)
	}
	if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	port, err := p.nextPort()
	if err != nil {
		out.Close()
		return fmt.Errorf("%s: port: %w", p.name, err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(append([]string{}, p.env...), "function_port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C in the terminal reaches the gateway, which then
	// stops functions in order instead of all of them dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.port.Store(int32(port))
	p.mu.Unlock()
	p.log.Info("function started", "pid", cmd.Process.Pid, "port", port, "log", p.logPath)
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.cmd = nil
		want := p.want
		p.restarts++
		restarts := p.restarts
		p.mu.Unlock()
		close(exited)
		if !want {
			p.log.Info("function stopped")
			return
		}
		// Crashed while wanted: restart with a growing delay, as a kubelet would.
		delay := min(time.Duration(restarts)*time.Second, 30*time.Second)
		p.log.Warn("function exited; restarting", "error", fmt.Sprint(err), "in", delay.String())
		time.Sleep(delay)
		p.mu.Lock()
		again := p.want && p.cmd == nil
		p.mu.Unlock()
		if again {
			if err := p.spawn(); err != nil {
				p.log.Error("restart failed", "error", err.Error())
			}
		}
	}()
	return nil
}

func (p *process) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if resp, err := client.Get(p.url() + "/_/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: not healthy within %s; see %s", p.name, limit, p.logPath)
}
