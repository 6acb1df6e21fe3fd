package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sscard/platform/shared/envconf"
)

// NATSVersion is the nats-server module go.mod pins; tests run that server as a process
// of its own (so they can SIGKILL it), built once from the module cache.
const NATSVersion = "v2.15.3"

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// NATSServerBinary builds nats-server once per cache ($SSCARD_CACHE, else the user cache
// dir /sscard) and returns its path.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsOnce.Do(func() {
		cache := envconf.CacheDir()
		if cache == "" {
			natsErr = errors.New("no cache directory: set SSCARD_CACHE")
			return
		}
		natsBin = filepath.Join(cache, "nats-server-"+NATSVersion, "nats-server")
		if _, err := os.Stat(natsBin); err == nil {
			return
		}
		build := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
		build.Dir = RepoRoot(t)
		if out, err := build.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("build nats-server: %v\n%s", err, out)
		}
	})
	if natsErr != nil {
		t.Fatal(natsErr)
	}
	return natsBin
}

// NATSServer is one nats-server process with JetStream on file storage, on loopback.
type NATSServer struct {
	Name     string
	Port     int
	Cluster  int // cluster port; 0 when not clustered
	StoreDir string
	LogFile  string
	bin      string
	routes   []string
	cmd      *exec.Cmd
	t        testing.TB
}

// URL is the client URL.
func (s *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// StartNATS starts one server with JetStream; it is stopped (by PID) when the test ends.
func StartNATS(t testing.TB) *NATSServer {
	t.Helper()
	s := &NATSServer{Name: "n1", Port: FreePort(t), StoreDir: t.TempDir(), bin: NATSServerBinary(t), t: t}
	s.LogFile = filepath.Join(s.StoreDir, "nats.log")
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// StartNATSCluster starts n servers routed to each other (cluster "sscard"), all with
// JetStream, and waits until each accepts clients.
func StartNATSCluster(t testing.TB, n int) []*NATSServer {
	t.Helper()
	bin := NATSServerBinary(t)
	var servers []*NATSServer
	var routes []string
	for i := range n {
		s := &NATSServer{Name: fmt.Sprintf("n%d", i+1), Port: FreePort(t), Cluster: FreePort(t), StoreDir: t.TempDir(), bin: bin, t: t}
		s.LogFile = filepath.Join(s.StoreDir, "nats.log")
		servers = append(servers, s)
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(s.Cluster))
	}
	for _, s := range servers {
		s.routes = routes
		s.Start()
		t.Cleanup(s.Stop)
	}
	return servers
}

// Start runs the server (again, after Kill: same port, same store) and waits for it.
func (s *NATSServer) Start() {
	s.t.Helper()
	args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-js", "-sd", s.StoreDir,
		"-n", s.Name, "-l", s.LogFile}
	if s.Cluster != 0 {
		args = append(args, "--cluster_name", "sscard", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(s.Cluster),
			"--routes", strings.Join(s.routes, ","))
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("nats-server %s did not listen; see %s", s.Name, s.LogFile)
}

// Kill ends the server with SIGKILL: no flush, no goodbye to clients.
func (s *NATSServer) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Stop ends the server with SIGTERM (SIGKILL after 10 s).
func (s *NATSServer) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
