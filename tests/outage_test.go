//go:build integration

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/runtime"
	"github.com/sscard/platform/tests/testenv"
)

// A dependency dies under a running function: requests get 503 problem+json with
// Retry-After, and the function recovers by itself when the server is back. The test
// runs a Redis of its own so the shared test services are not disturbed.
func TestOutage_RedisDownThenBack(t *testing.T) {
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	port := strings.Split(freeAddr(t), ":")[1]
	dir := t.TempDir()
	startRedis := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--requirepass", env.Secret(t, "redis-password"), "--logfile", filepath.Join(dir, "redis.log"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	redis := startRedis()
	defer func() { _ = redis.Process.Kill(); _ = redis.Wait() }()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	started := make(chan string, 1)
	fnEnv := env.FunctionEnv(dsn, "redis_addr=127.0.0.1:"+port, "retry_after=7s", "dependency_timeout=500ms")
	go func() {
		err := runtime.Run(ctx, "login-poll", fnEnv, platform.Needs{Postgres: true, Redis: true},
			func(d *platform.Deps) (*runtime.Router, error) {
				// The scan-login poll: with Redis down it must answer 503 and mint nothing.
				sessions := login.NewSessions(d.Redis, login.Config{})
				r := runtime.NewRouter("login-poll")
				r.Get("/{session}", func(req handler.Request) (handler.Response, error) {
					res, err := sessions.Poll(req.Context(), runtime.Param(req, "session"), req.Header.Get(login.PollSecretHeader), time.Now())
					if err != nil {
						return handler.Response{}, err
					}
					return runtime.JSON(200, map[string]string{"state": string(res.State), "token": res.Token})
				})
				return r, nil
			}, started)
		if err != nil {
			fmt.Fprintln(os.Stderr, "run:", err)
		}
	}()
	var addr string
	select {
	case addr = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("function did not start")
	}
	health := func() (int, http.Header, map[string]any) {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, resp.Header, m
	}
	testenv.Eventually(t, 10*time.Second, "healthy with redis up", func() bool { s, _, _ := health(); return s == 200 })

	_ = redis.Process.Kill()
	_ = redis.Wait()
	pollReq, _ := http.NewRequest("GET", "http://"+addr+"/"+strings.Repeat("A", 43), nil)
	pollReq.Header.Set(login.PollSecretHeader, strings.Repeat("B", 43))
	resp, err := http.DefaultClient.Do(pollReq)
	if err != nil {
		t.Fatal(err)
	}
	var polled map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&polled)
	resp.Body.Close()
	if resp.StatusCode != 503 || polled["token"] != nil || resp.Header.Get("Retry-After") == "" {
		t.Errorf("poll with redis down: want 503 with Retry-After and no token, got %d %v", resp.StatusCode, polled)
	}
	status, h, body := health()
	if status != 503 || h.Get("Content-Type") != "application/problem+json" || h.Get("Retry-After") != "7" || body["dependency"] != "redis" {
		t.Fatalf("redis down: want 503 problem+json, Retry-After 7, dependency redis; got %d %q %q %v",
			status, h.Get("Content-Type"), h.Get("Retry-After"), body)
	}

	redis = startRedis()
	testenv.Eventually(t, 15*time.Second, "recovered after redis returned", func() bool { s, _, _ := health(); return s == 200 })
}
