package application

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/problem"
)

// streamedWorkbook writes rows with excelize's StreamWriter: a header and n applicant rows
// of the given cells (cells(i) for row i).
func streamedWorkbook(t testing.TB, n int, cells func(i int) []any) []byte {
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
		if err := sw.SetRow("A"+fmt.Sprint(i+2), cells(i)); err != nil {
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

func peakHeap(t *testing.T, fn func()) (uint64, time.Duration) {
	t.Helper()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

// A zip bomb of rows: a million one-cell rows pack into a few hundred KB. It is refused
// from the zip directory, before any XML is read, naming the row limit.
func TestReadBatch_MillionRowsRefusedQuickly(t *testing.T) {
	xlsx := streamedWorkbook(t, 1_000_000, func(int) []any { return []any{1} })
	t.Logf("a million rows: %d KB packed", len(xlsx)>>10)
	var err error
	alloc, took := peakHeap(t, func() { _, _, err = readBatch(context.Background(), xlsx) })
	if problemStatus(err) != 413 || !strings.Contains(err.Error(), fmt.Sprint(MaxBatchRows)) {
		t.Fatalf("want 413 naming the row limit %d, got %v", MaxBatchRows, err)
	}
	t.Logf("refused in %v, %d KB allocated", took, alloc>>10)
	if took > 2*time.Second || alloc > 16<<20 {
		t.Errorf("refusal should be quick and small: %v, %d MB allocated", took, alloc>>20)
	}
}

// Within the unpacked-size limit but one applicant over the row limit: rows are streamed
// and reading stops at the first row past the limit (the rows after it are never read).
func TestReadBatch_StopsAtRowLimitPlusOne(t *testing.T) {
	xlsx := streamedWorkbook(t, 200_000, func(i int) []any { return []any{i} })
	var err error
	alloc, took := peakHeap(t, func() { _, _, err = readBatch(context.Background(), xlsx) })
	if problemStatus(err) != 413 || !strings.Contains(err.Error(), fmt.Sprintf("row %d", MaxBatchRows+2)) {
		t.Fatalf("want 413 naming row %d, got %v", MaxBatchRows+2, err)
	}
	t.Logf("200,000 rows (%d KB packed) refused at row %d in %v, %d MB allocated", len(xlsx)>>10, MaxBatchRows+2, took, alloc>>20)
	if alloc > 64<<20 {
		t.Errorf("reading should stop at the limit: %d MB allocated", alloc>>20)
	}

	// Exactly the limit is accepted; blank rows do not count.
	blank := map[int]bool{500: true, 1000: true, 1500: true, 2000: true}
	full := streamedWorkbook(t, MaxBatchRows+len(blank), func(i int) []any {
		if blank[i] {
			return []any{"", "", ""}
		}
		return []any{"110105194912310029", "张三丰", "13800138000"}
	})
	_, rows, err := readBatch(context.Background(), full)
	if err != nil || len(rows) != MaxBatchRows {
		t.Fatalf("the limit itself: want %d rows, got %d, %v", MaxBatchRows, len(rows), err)
	}
	t.Logf("a full upload of %d applicants: %d KB packed", MaxBatchRows, len(full)>>10)

	// The request deadline: a cancelled context stops the reading.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := readBatch(ctx, xlsx); err != context.Canceled {
		t.Errorf("cancelled: want context.Canceled, got %v", err)
	}
}

func problemStatus(err error) int {
	if p, ok := problem.As(err); ok {
		return p.Status
	}
	return 0
}
