// Command loginpoll measures the login-poll function under 2,000 concurrent connections
// against its floor — a bare Go HTTP handler doing one Redis GET — in the same run, with
// wrk as the load generator (issue: ≥ 0.8× the floor's throughput, p99 ≤ 50 ms, no errors).
//
// Run through `make bench` (which starts the test services). It builds login-poll, starts
// it as its own process on the test Redis, creates enough login sessions that no session
// is polled faster than the interval (so every answer is a real poll, not slow_down), and
// drives each target for -duration in all, in three rounds that alternate which side goes
// first. Each round runs saturated (every connection sends its next request as soon as the
// answer arrives: throughput), then paced (each connection waits between polls, as a login
// page does, so that together they send about half the floor's saturated rate: latency
// without the closed loop's queue).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/tests/bench/benchkit"
)

func main() {
	conns := flag.Int("connections", 2000, "concurrent connections")
	duration := flag.Duration("duration", 30*time.Second, "load duration per target")
	sessions := flag.Int("sessions", 150_000, "login sessions to poll round-robin")
	floorMode := flag.String("floor", "", "internal: serve the floor on this address")
	flag.StringVar(&profileDir, "profile-dir", "", "write a CPU profile of login-poll during its load here")
	flag.Parse()
	env := envconf.New(os.Environ())
	rdb := redisClient(env)
	if *floorMode != "" {
		serveFloor(*floorMode, rdb)
		return
	}
	if err := run(env, rdb, *conns, *duration, *sessions); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func redisClient(env *envconf.Env) *redis.Client {
	pw, _ := secrets.Reader{Dir: env.String("secret_mount_path", "")}.Optional("redis-password")
	return redis.NewClient(&redis.Options{Addr: env.String("redis_addr", "127.0.0.1:6379"), Password: pw, PoolSize: 256})
}

// serveFloor is the floor: the least an HTTP function reading Redis can do.
func serveFloor(addr string, rdb *redis.Client) {
	ctx := context.Background()
	rdb.Set(ctx, "bench:floor", `{"state":"waiting","interval":2}`, 0)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		v, err := rdb.Get(r.Context(), "bench:floor").Result()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, v)
	})
	_ = http.ListenAndServe(addr, nil)
}

var profileDir string

type result struct {
	name          string
	rps           float64
	p50, p99      time.Duration
	errors, non2x int
}

func run(env *envconf.Env, rdb *redis.Client, conns int, d time.Duration, n int) error {
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w (run through make bench)", err)
	}
	dir, err := os.MkdirTemp("", "bench-loginpoll-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Sessions valid for the whole run, polled round-robin.
	sessions := login.NewSessions(rdb, login.Config{Validity: d*2 + 5*time.Minute})
	ids := make([][2]string, 0, n) // session id, poll secret
	for range n {
		s, err := sessions.Create(ctx, time.Now())
		if err != nil {
			return err
		}
		ids = append(ids, [2]string{s.ID, s.PollSecret})
	}
	script := filepath.Join(dir, "poll.lua")
	if err := writeScript(script, ids); err != nil {
		return err
	}

	// login-poll runs with its stack.yml environment, as deployed; only the addresses of the
	// test services are local. Its request log goes to a file, as deployed.
	pprofAddr := benchkit.FreeAddr()
	fn, err := benchkit.Start(dir, "login-poll", "debug_pprof_addr="+pprofAddr, "postgres_dsn="+env.String("postgres_dsn", ""),
		"redis_addr="+env.String("redis_addr", ""), "login_qr_validity="+(d*2+5*time.Minute).String(),
		"event_sink=") // nothing to relay here
	if err != nil {
		return err
	}
	defer fn.Stop()
	floorAddr := benchkit.FreeAddr()
	self, _ := os.Executable()
	floor := exec.Command(self, "-floor", floorAddr)
	floor.Env = os.Environ()
	if err := floor.Start(); err != nil {
		return err
	}
	defer func() { _ = floor.Process.Kill(); _ = floor.Wait() }()
	if err := benchkit.WaitUp("http://" + floorAddr + "/"); err != nil {
		return err
	}
	fnAddr := strings.TrimPrefix(fn.URL, "http://")

	fmt.Printf("login-poll benchmark: %d connections, %s per target, %d sessions, %d cores shared by wrk and the server\n",
		conns, d, n, runtime.NumCPU())
	// The same wrk script drives both, so the load generator costs the same on both sides
	// (a scripted request() is far dearer for wrk than a fixed one).
	// Rounds alternate which side goes first, so drift on a shared machine (other tenants,
	// Redis's append-only file growing) weighs on both alike.
	const rounds = 3
	slice := max(time.Second, d/rounds)
	benchkit.Profile(pprofAddr, profileDir, "login-poll", slice)
	var fs, ls, fp, lp []result
	var think time.Duration
	// A login-poll run that followed another at once would poll the sessions the last one
	// ended on again within the poll interval: slow_down (429), and each such session's
	// interval grows, so it answers 429 for the rest of the bench. (It happens where one
	// round ends and the next begins with login-poll.) So a run waits out the interval.
	var fnEnded time.Time
	for r := range rounds {
		pair := func(think time.Duration) (floor, fn result, err error) {
			run := func(url string) (result, error) {
				if url == "http://"+fnAddr {
					time.Sleep(time.Until(fnEnded.Add(login.DefaultConfig.Interval + 500*time.Millisecond)))
					defer func() { fnEnded = time.Now() }()
				}
				return wrk(url, script, think, conns, slice)
			}
			if r%2 == 0 {
				if floor, err = run("http://" + floorAddr); err == nil {
					fn, err = run("http://" + fnAddr)
				}
			} else if fn, err = run("http://" + fnAddr); err == nil {
				floor, err = run("http://" + floorAddr)
			}
			return floor, fn, err
		}
		f, l, err := pair(0)
		if err != nil {
			return err
		}
		fs, ls = append(fs, f), append(ls, l)
		if r == 0 {
			// The paced phase: each connection waits between polls, as a login page does,
			// so that together they send about half the floor's saturated rate. Latency then
			// is the service time, not the queue of a closed loop (there p99 ≈ connections ÷
			// throughput, for the floor too).
			think = time.Duration(float64(conns) / (f.rps / 2) * float64(time.Second))
		}
		if f, l, err = pair(think); err != nil {
			return err
		}
		fp, lp = append(fp, f), append(lp, l)
	}
	floorRes, fnRes := combine("floor (bare handler + one Redis GET)", fs), combine("login-poll GET /{session}", ls)
	paced := fmt.Sprintf(", paced (%s between polls)", think.Round(time.Millisecond))
	floorPaced, fnPaced := combine("floor"+paced, fp), combine("login-poll"+paced, lp)
	fmt.Println()
	fmt.Printf("%-44s %12s %10s %10s %8s %8s\n", "target", "req/s", "p50", "p99", "errors", "non-2xx")
	for _, r := range []result{floorRes, fnRes, floorPaced, fnPaced} {
		fmt.Printf("%-44s %12.0f %10s %10s %8d %8d\n", r.name, r.rps, r.p50, r.p99, r.errors, r.non2x)
	}
	ratio := fnRes.rps / floorRes.rps
	fmt.Printf("(%d rounds of %s per target and phase: mean req/s, median p50, worst p99)\n", rounds, slice)
	fmt.Printf("\nthroughput ratio login-poll/floor = %.2f (target ≥ 0.80), saturated p99 %s (floor %s: a closed loop of %d connections queues)\n",
		ratio, fnRes.p99, floorRes.p99, conns)
	fmt.Printf("p99 with %d connections paced to ~%.0f req/s: login-poll %s, floor %s (target ≤ 50ms); errors %d, non-2xx %d (target 0)\n",
		conns, fnPaced.rps, fnPaced.p99, floorPaced.p99, fnRes.errors+fnPaced.errors, fnRes.non2x+fnPaced.non2x)
	verdict := "MEETS"
	if ratio < 0.8 || fnPaced.p99 > 50*time.Millisecond || fnRes.errors+fnRes.non2x+fnPaced.errors+fnPaced.non2x > 0 {
		verdict = "MISSES"
	}
	fmt.Printf("verdict: %s the targets (throughput saturated, p99 paced)\n", verdict)
	return nil
}

// combine sums up the rounds of one target: mean throughput, median p50, worst p99, all
// errors.
func combine(name string, rs []result) result {
	out := result{name: name}
	var p50s []time.Duration
	for _, r := range rs {
		out.rps += r.rps / float64(len(rs))
		p50s = append(p50s, r.p50)
		out.p99 = max(out.p99, r.p99)
		out.errors += r.errors
		out.non2x += r.non2x
	}
	slices.Sort(p50s)
	out.p50 = p50s[len(p50s)/2]
	return out
}

// writeScript makes a wrk script that walks the sessions, each thread from its own offset.
// Each poll carries its session's secret as the page does (the floor ignores it).
func writeScript(path string, ids [][2]string) error {
	var b strings.Builder
	b.WriteString("local ids = {\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "{%q, %q},\n", id[0], id[1])
	}
	b.WriteString(`}
local counter = 0
local threads = 0
-- thread:set makes "start" a global of each thread: threads walk disjoint halves.
function setup(thread) thread:set("start", threads * math.floor(#ids / 2)); threads = threads + 1 end
local think = tonumber(os.getenv("BENCH_THINK_MS") or "0")
function delay() return think end
function request()
  counter = counter + 1
  local id = ids[((start + counter) % #ids) + 1]
  return wrk.format("GET", "/" .. id[1], {["X-Poll-Secret"] = id[2]})
end
`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var (
	reqSec  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	pct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
	sockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrk runs wrk against url; think > 0 makes every connection wait that long between its
// requests (the script's delay()).
func wrk(url, script string, think time.Duration, conns int, d time.Duration) (result, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency", "--timeout", "5s"}
	if script != "" {
		args = append(args, "-s", script)
	}
	args = append(args, url)
	fmt.Printf("running wrk %s\n", strings.Join(args, " "))
	cmd := exec.Command("wrk", args...)
	cmd.Env = append(os.Environ(), "BENCH_THINK_MS="+strconv.FormatInt(think.Milliseconds(), 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	text := string(out)
	r := result{}
	m := reqSec.FindStringSubmatch(text)
	if m == nil {
		return result{}, errors.New("wrk output without Requests/sec:\n" + text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range pct.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		dur := time.Duration(v * float64(unit)).Round(10 * time.Microsecond)
		if p[1] == "50" {
			r.p50 = dur
		} else {
			r.p99 = dur
		}
	}
	if m := sockErr.FindStringSubmatch(text); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	if m := non2xx.FindStringSubmatch(text); m != nil {
		r.non2x, _ = strconv.Atoi(m[1])
	}
	return r, nil
}
