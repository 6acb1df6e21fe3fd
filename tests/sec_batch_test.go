//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// batchWorkbook streams a header and n applicant rows (row i from cells) into an xlsx.
func batchWorkbook(t *testing.T, n int, cells func(i int) []any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.SetRow("A1", []any{"证件号码", "姓名", "手机号码"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := sw.SetRow("A"+strconv.Itoa(i+2), cells(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// functionPID finds the process the gateway started for fn, from its log.
func (p *localPlatform) functionPID(t *testing.T, fn string) int {
	t.Helper()
	f, err := os.Open(filepath.Join(p.logs, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pid := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Msg, Function string
			PID           int `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "function started" && l.Function == fn {
			pid = l.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no pid of %s in the gateway log", fn)
	}
	return pid
}

// procKB reads a VmRSS/VmHWM-style line of /proc/<pid>/status in KB.
func procKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// An employer upload is bounded by what it holds, not by what it claims: a million-row
// workbook of a few MB, and one applicant over the row limit, are refused quickly with
// 413 naming the limit, nothing is applied, and card-apply does not swell.
func TestCardApply_BatchLimits(t *testing.T) {
	p := startPlatform(t)
	pool := p.env.Pool(t, p.dsn)
	pid := p.functionPID(t, "card-apply")
	rssBefore := procKB(t, pid, "VmRSS")
	xlsxH := http.Header{"Content-Type": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}}

	million := batchWorkbook(t, 1_000_000, func(int) []any { return []any{1} })
	start := time.Now()
	resp, body := p.do(t, "POST", "/function/card-apply/batches", xlsxH, million)
	took := time.Since(start)
	t.Logf("a million rows, %d KB packed: %d in %v", len(million)>>10, resp.StatusCode, took)
	if resp.StatusCode != 413 || !strings.Contains(string(body), "2000") {
		t.Errorf("a million rows: want 413 naming the row limit 2000, got %d %s", resp.StatusCode, body)
	}
	if took > 5*time.Second {
		t.Errorf("a million rows: refused after %v, want quickly", took)
	}

	// Valid applicants, one over the limit: nothing is applied (the limit is checked
	// before the first row is).
	over := batchWorkbook(t, 2001, func(i int) []any {
		return []any{cardApplyID(fmt.Sprintf("110105%s%03d", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format("20060102"), i%1000)), "张三", "13800138000"}
	})
	resp, body = p.do(t, "POST", "/function/card-apply/batches", xlsxH, over)
	if resp.StatusCode != 413 || !strings.Contains(string(body), "row 2002") {
		t.Errorf("2001 applicants: want 413 naming row 2002, got %d %s", resp.StatusCode, body)
	}
	var applications, persons int
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM applications), (SELECT count(*) FROM persons)`).Scan(&applications, &persons); err != nil {
		t.Fatal(err)
	}
	if applications != 0 || persons != 0 {
		t.Errorf("refused uploads must apply nothing: %d applications, %d persons", applications, persons)
	}

	peak := procKB(t, pid, "VmHWM")
	t.Logf("card-apply RSS %d MB before, peak %d MB after", rssBefore>>10, peak>>10)
	if peak-rssBefore > 100<<10 {
		t.Errorf("card-apply grew by %d MB on refused uploads", (peak-rssBefore)>>10)
	}
}
