// Command reconcile-bench measures the reconciliation join against its peers on the same
// files, in the same run: the job's matching (shared/reconcile, the code the function
// runs), DuckDB reading the same CSVs, and PostgreSQL 15's FULL OUTER JOIN after COPY.
// Each engine runs in a child process of its own, so its peak RSS is its own.
//
// It is a module of its own so DuckDB (cgo, a large library) stays out of the functions'
// build. `make bench-reconcile` runs it against the test services; RECON_N sets the rows.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Outcome is what a child engine reports on its last stdout line.
type Outcome struct {
	Engine string           `json:"engine"`
	Wall   float64          `json:"wall"`
	Phases string           `json:"phases"`
	Counts map[string]int64 `json:"counts"`
	// ServerRSS: for PostgreSQL, the peak RSS of its backends (the work is there).
	ServerRSS int64 `json:"serverRssKB"`
}

var classes = []string{"long", "short", "amount", "status", "duplicate"}

func main() {
	n := flag.Int("n", 1_000_000, "rows per file")
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed afterwards)")
	engine := flag.String("engine", "", "run one engine (child mode): go, duckdb, pg")
	engines := flag.String("engines", "go,duckdb,pg", "engines to run")
	reuse := flag.Bool("reuse", false, "reuse the files of an earlier run in -dir (same -n)")
	flag.Parse()
	if *engine != "" {
		out, err := runEngine(*engine, *dir, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, *engine+":", err)
			os.Exit(1)
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "reconcile-bench-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	t0 := time.Now()
	var injected map[string]int64
	manifest := filepath.Join(*dir, fmt.Sprintf("injected-%d.json", *n))
	if b, err := os.ReadFile(manifest); *reuse && err == nil && json.Unmarshal(b, &injected) == nil {
		fmt.Println("reusing the files in", *dir)
	} else {
		if injected, err = generate(*dir, *n); err != nil {
			fail(err)
		}
		b, _ := json.Marshal(injected)
		if err := os.WriteFile(manifest, b, 0o644); err != nil {
			fail(err)
		}
	}
	st, _ := os.Stat(filepath.Join(*dir, "platform.csv"))
	fmt.Printf("reconcile bench: %d platform rows, %d channel rows, %.0f MB per file, generated in %.1f s; injected %v\n",
		*n, *n+int(injected["long"])-int(injected["short"])+int(injected["duplicate"]), float64(st.Size())/1e6,
		time.Since(t0).Seconds(), injected)
	fmt.Println("(2 shared cores; figures are noisy: compare the ratios of this run)")
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	results := map[string]Outcome{}
	rss := map[string]int64{}
	rows := float64(2**n + int(injected["long"]) - int(injected["short"]) + int(injected["duplicate"]))
	ok := true
	cpu := map[string]float64{}
	fmt.Printf("%-7s %9s %12s %8s %13s  %-44s %s\n", "engine", "wall s", "rows/s", "cpu s", "peak RSS MB",
		"found (long short amount status duplicate)", "phases")
	for _, e := range strings.Split(*engines, ",") {
		cmd := exec.Command(self, "-engine", e, "-dir", *dir, "-n", strconv.Itoa(*n))
		cmd.Stderr = os.Stderr
		cmd.Env = os.Environ()
		out, err := cmd.Output()
		if err != nil {
			fmt.Printf("%-7s failed: %v\n", e, err)
			ok = false
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var o Outcome
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &o); err != nil {
			fail(fmt.Errorf("%s: %v in %q", e, err, out))
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		peak := ru.Maxrss // KB on Linux
		cpu[e] = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)).Seconds()
		if o.ServerRSS > peak {
			peak = o.ServerRSS
		}
		results[e], rss[e] = o, peak
		var found []string
		match := true
		for _, c := range classes {
			found = append(found, strconv.FormatInt(o.Counts[c], 10))
			match = match && o.Counts[c] == injected[c]
		}
		verdict := "= injected"
		if !match {
			verdict, ok = "≠ injected", false
		}
		fmt.Printf("%-7s %9.2f %12.0f %8.2f %13.0f  %-44s %s\n", e, o.Wall, rows/o.Wall, cpu[e], float64(peak)/1024,
			strings.Join(found, " ")+" "+verdict, o.Phases)
	}
	if g, ok1 := results["go"]; ok1 {
		if d, ok2 := results["duckdb"]; ok2 {
			fmt.Printf("ratio go/duckdb wall %.2f (target ≤ 0.70), cpu %.2f; peak RSS go %.0f MB (target ≤ 1536), duckdb %.0f MB\n",
				g.Wall/d.Wall, cpu["go"]/cpu["duckdb"], float64(rss["go"])/1024, float64(rss["duckdb"])/1024)
		}
		if p, ok2 := results["pg"]; ok2 {
			fmt.Printf("ratio go/pg wall %.2f (pg: COPY of both files and the FULL OUTER JOIN; its CPU is in the server, not counted)\n",
				g.Wall/p.Wall)
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "reconcile bench:", err)
	os.Exit(1)
}

func runEngine(engine, dir string, n int) (Outcome, error) {
	p, c := filepath.Join(dir, "platform.csv"), filepath.Join(dir, "channel.csv")
	switch engine {
	case "go":
		return runGo(p, c, n)
	case "duckdb":
		return runDuck(p, c)
	case "pg":
		return runPG(p, c)
	}
	return Outcome{}, fmt.Errorf("unknown engine %q", engine)
}

// generate writes platform.csv and channel.csv: the channel file shuffled, its times
// drifting 0-2 s, with n/1000 rows of each discrepancy class injected: short (left out),
// amount (one fen more), status (CLOSED for SUCCESS), duplicate (written twice) and
// long (extra keys).
func generate(dir string, n int) (map[string]int64, error) {
	inj := map[string]int64{}
	for _, c := range classes {
		inj[c] = 0
	}
	day := time.Date(2026, 12, 3, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	pf, err := os.Create(filepath.Join(dir, "platform.csv"))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	cf, err := os.Create(filepath.Join(dir, "channel.csv"))
	if err != nil {
		return nil, err
	}
	defer cf.Close()
	pw, cw := bufio.NewWriterSize(pf, 1<<20), bufio.NewWriterSize(cf, 1<<20)
	header := "txn_id,amount_fen,status,ts\n"
	pw.WriteString(header)
	cw.WriteString(header)
	var buf []byte
	row := func(w *bufio.Writer, prefix byte, i int, amount int64, status string, sec int) {
		buf = append(buf[:0], prefix)
		buf = append(buf, "20261203"...)
		buf = appendPadded(buf, i, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, amount, 10)
		buf = append(buf, ',')
		buf = append(buf, status...)
		buf = append(buf, ',')
		buf = day.Add(time.Duration(sec)*time.Second).AppendFormat(buf, "2006-01-02 15:04:05")
		buf = append(buf, '\n')
		w.Write(buf)
	}
	amountOf := func(i int) int64 { return int64(100 + (i*7919)%500000) }
	statusOf := func(i int) string {
		if i%10 == 9 {
			return "REFUND"
		}
		return "SUCCESS"
	}
	secOf := func(i int) int { return int(int64(i) * 86000 / int64(n)) }
	for i := 0; i < n; i++ {
		row(pw, 'T', i, amountOf(i), statusOf(i), secOf(i))
	}
	// The channel side in a shuffled order (Fisher-Yates over indexes).
	perm := make([]uint32, n)
	for i := range perm {
		perm[i] = uint32(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := n - 1; i > 0; i-- {
		k := r.IntN(i + 1)
		perm[i], perm[k] = perm[k], perm[i]
	}
	long := 0
	for k, pi := range perm {
		i := int(pi)
		amount, status, sec := amountOf(i), statusOf(i), secOf(i)+i%3
		switch i % 1000 {
		case 1:
			inj["short"]++
			continue
		case 2:
			amount++
			inj["amount"]++
		case 3:
			status = "CLOSED"
			inj["status"]++
		case 4:
			row(cw, 'T', i, amount, status, sec)
			inj["duplicate"]++
		}
		row(cw, 'T', i, amount, status, sec)
		if k%1000 == 500 {
			row(cw, 'L', long, amountOf(long), "SUCCESS", secOf(k))
			long++
			inj["long"]++
		}
	}
	if err := pw.Flush(); err != nil {
		return nil, err
	}
	return inj, cw.Flush()
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
