package testenv

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartRedisCluster starts three redis-server processes with cluster mode on loopback,
// joins them as a 3-master Redis Cluster (redis-cli --cluster create, no replicas) and
// returns their addresses; they are stopped by PID when the test ends.
func StartRedisCluster(t testing.TB) []string {
	t.Helper()
	var addrs []string
	for range 3 {
		port := FreePort(t)
		dir := t.TempDir()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, addr)
	}
	for _, a := range addrs {
		Eventually(t, 10*time.Second, "redis "+a+" up", func() bool {
			return exec.Command("redis-cli", "-u", "redis://"+a, "ping").Run() == nil
		})
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	Eventually(t, 20*time.Second, "cluster state ok", func() bool {
		out, err := exec.Command("redis-cli", "-u", "redis://"+addrs[0], "cluster", "info").Output()
		return err == nil && contains(string(out), "cluster_state:ok")
	})
	return addrs
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
