package kiosk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/problem"
)

// MaxBatchRows is the most kiosks one workbook may register (001 2.1).
const MaxBatchRows = 1000

// Workbook limits: excelize refuses a file whose parts unzip beyond these, so a small
// upload cannot inflate into gigabytes (a zip bomb).
const (
	unzipLimit    = 64 << 20
	unzipXMLLimit = 16 << 20
)

// Columns of the registration workbook, in order (the first row is this header).
var Columns = []string{"设备编号 device ID", "名称 name", "区划代码 region code", "地址 address", "型号 model",
	"SM2公钥 public key"}

// FailureColumns are the columns of the failure workbook: the row as it was, its row
// number in the uploaded file and the reason, so it can be fixed and uploaded again.
var FailureColumns = append(append([]string{}, Columns...), "原行号 row", "失败原因 reason")

// BatchResult is the outcome of a workbook registration.
type BatchResult struct {
	BatchID    string    `json:"batchId"`
	Rows       int       `json:"rows"`
	Registered int       `json:"registered"`
	Failed     int       `json:"failed"`
	Failures   []Failure `json:"failures"`
	// FailuresFile is the path (below the function) of the failure workbook; "" when none failed.
	FailuresFile string `json:"failuresFile,omitempty"`
}

func sortFailures(f []Failure) {
	sort.SliceStable(f, func(i, j int) bool { return f[i].Index < f[j].Index })
}

func tooManyRows() *problem.Problem {
	p := problem.Invalid(fmt.Sprintf("a workbook registers at most %d kiosks; split it", MaxBatchRows),
		problem.Field("file", fmt.Sprintf("more than %d data rows", MaxBatchRows)))
	p.Status = 422
	return p
}

// sheetRow is one data row of the workbook.
type sheetRow struct {
	n     int // row number in the sheet (1 is the header)
	cells []string
}

// readWorkbook streams the first sheet's rows and stops at the first row past the limit,
// so a huge sheet is refused without being read whole; it gives up when ctx ends.
func readWorkbook(ctx context.Context, xlsx []byte) ([]sheetRow, error) {
	bad := func(why string) error {
		return problem.Invalid("the file is not a registration workbook", problem.Field("file", why))
	}
	f, err := excelize.OpenReader(bytes.NewReader(xlsx), excelize.Options{UnzipSizeLimit: unzipLimit, UnzipXMLSizeLimit: unzipXMLLimit})
	if err != nil {
		if errors.Is(err, excelize.ErrWorkbookFileFormat) || strings.Contains(err.Error(), "zip") {
			return nil, bad("must be an .xlsx workbook")
		}
		return nil, bad("cannot be read: " + err.Error())
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, bad("has no sheet")
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		return nil, bad("cannot be read: " + err.Error())
	}
	defer rows.Close()
	var out []sheetRow
	n := 0
	for rows.Next() {
		n++
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cells, err := rows.Columns()
		if err != nil {
			return nil, bad(fmt.Sprintf("row %d cannot be read", n))
		}
		if n == 1 {
			if len(cells) == 0 || !strings.Contains(strings.ToLower(cells[0]), "device") && !strings.Contains(cells[0], "设备编号") {
				return nil, bad("the first row must be the header: " + strings.Join(Columns, " | "))
			}
			continue
		}
		if blank(cells) {
			continue
		}
		if len(out) == MaxBatchRows {
			return nil, tooManyRows()
		}
		out = append(out, sheetRow{n: n, cells: cells})
	}
	if err := rows.Error(); err != nil {
		return nil, bad("cannot be read: " + err.Error())
	}
	return out, nil
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func cell(cells []string, i int) string {
	if i < len(cells) {
		return cells[i]
	}
	return ""
}

// RegisterWorkbook registers the kiosks of an Excel workbook (at most 1,000 rows). Valid
// rows are registered together; the others are listed with their reasons and written to a
// failure workbook (bucket reports) the admin downloads, fixes and uploads again.
func (s *Service) RegisterWorkbook(ctx context.Context, admin Admin, xlsx []byte) (BatchResult, error) {
	rows, err := readWorkbook(ctx, xlsx)
	if err != nil {
		return BatchResult{}, err
	}
	regs := make([]Registration, len(rows))
	for i, r := range rows {
		regs[i] = Registration{ID: cell(r.cells, 0), Name: cell(r.cells, 1), RegionCode: cell(r.cells, 2),
			Address: cell(r.cells, 3), Model: cell(r.cells, 4), PublicKey: cell(r.cells, 5)}
	}
	res := BatchResult{BatchID: uuid.NewString(), Rows: len(rows)}
	n, failures, err := s.enrol(ctx, admin, regs, func(i int) int { return rows[i].n })
	if err != nil {
		return BatchResult{}, err
	}
	res.Registered, res.Failed, res.Failures = n, len(failures), failures
	if res.Failures == nil {
		res.Failures = []Failure{}
	}
	var key *string
	if len(failures) > 0 {
		byRow := map[int][]string{}
		for _, r := range rows {
			byRow[r.n] = r.cells
		}
		book, err := failureWorkbook(failures, byRow)
		if err != nil {
			return BatchResult{}, err
		}
		k := "kiosk-batches/" + res.BatchID + "/failures.xlsx"
		if err := s.Reports.Put(ctx, k, book, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"); err != nil {
			return BatchResult{}, err
		}
		key = &k
		res.FailuresFile = "/kiosk-batches/" + res.BatchID + "/failures"
	}
	if _, err := s.DB.Exec(ctx, `INSERT INTO kiosk_batches (batch_id, admin_id, region_code, rows, registered, failed, object_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, res.BatchID, admin.ID, admin.Region, res.Rows, res.Registered, res.Failed, key); err != nil {
		return BatchResult{}, err
	}
	return res, nil
}

// failureWorkbook writes the failed rows, as uploaded, with their row numbers and reasons.
func failureWorkbook(failures []Failure, rows map[int][]string) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Sheet1"
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return nil, err
	}
	header := make([]any, len(FailureColumns))
	for i, c := range FailureColumns {
		header[i] = c
	}
	if err := sw.SetRow("A1", header); err != nil {
		return nil, err
	}
	for i, fl := range failures {
		vals := make([]any, len(FailureColumns))
		for c := range Columns {
			vals[c] = cell(rows[fl.Index], c)
		}
		vals[len(Columns)], vals[len(Columns)+1] = fl.Index, fl.Reason
		name, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(name, vals); err != nil {
			return nil, err
		}
	}
	if err := sw.Flush(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FailureFile returns the failure workbook of a batch registered in the admin's region.
func (s *Service) FailureFile(ctx context.Context, admin Admin, batchID string) ([]byte, error) {
	if _, err := uuid.Parse(batchID); err != nil {
		return nil, problem.NotFound("no such batch")
	}
	var key *string
	err := s.DB.QueryRow(ctx, `SELECT object_key FROM kiosk_batches WHERE batch_id = $1 AND region_code LIKE $2 || '%'`,
		batchID, RegionPrefix(admin.Region)).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, problem.NotFound("no such batch in your region")
	}
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, problem.NotFound("every row of this batch was registered: there is no failure file")
	}
	return s.Reports.Get(ctx, *key)
}
