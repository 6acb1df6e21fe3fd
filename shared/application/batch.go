package application

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/shared/problem"
)

// Employer batch application (单位批量申领, the pattern of 001 2.1): an employer uploads an
// xlsx list; every valid row becomes an application (channel employer) exactly as a
// single one would, and the answer lists each failed row with its reasons. The result
// workbook holds only the failed rows plus a reason column, so the employer fixes them
// and uploads that file again; rows already applied then report the open application.

// MaxBatchRows bounds one upload.
const MaxBatchRows = 2000

// ReportBucket keeps result workbooks.
const ReportBucket = "reports"

// XLSXType is the media type of an xlsx workbook.
const XLSXType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// columns maps accepted header names (Chinese or English) to request fields.
var columns = map[string]string{
	"证件号码": "idNumber", "身份证号码": "idNumber", "idnumber": "idNumber",
	"姓名": "name", "name": "name",
	"手机号码": "phone", "手机": "phone", "phone": "phone",
	"英文姓名": "englishName", "englishname": "englishName",
	"中文姓名": "chineseName", "chinesename": "chineseName",
	"国籍": "nationality", "nationality": "nationality",
	"民族": "ethnicity", "ethnicity": "ethnicity",
}

// RowFailure is one rejected row (1-based, as the spreadsheet shows it).
type RowFailure struct {
	Row     int      `json:"row"`
	Reasons []string `json:"reasons"`
}

// BatchResult is the outcome of one upload.
type BatchResult struct {
	BatchID   string       `json:"batchId"`
	Rows      int          `json:"rows"`
	Accepted  int          `json:"accepted"`
	Failed    int          `json:"failed"`
	Failures  []RowFailure `json:"failures"`
	ResultKey string       `json:"resultKey,omitempty"` // object in the reports bucket
	Result    []byte       `json:"-"`                   // the result workbook
}

// An xlsx is a zip: a few hundred KB can unpack to gigabytes of XML (a million rows of
// one cell each is about 480 KB packed). The limits hold whatever the packed size:
// every part unpacked together (declared sizes, which archive/zip enforces while
// reading), and the size of a worksheet or string table kept in memory (a larger one
// is streamed from a temporary file). A workbook of MaxBatchRows applicants with every
// column filled unpacks to about 2 MB.
const (
	maxBatchUnzipBytes = 32 << 20
	maxBatchXMLBytes   = 8 << 20
)

// ApplyBatch applies every row of an xlsx list on behalf of an employer.
func (s *Service) ApplyBatch(ctx context.Context, xlsx []byte, actor Actor) (BatchResult, error) {
	header, rows, err := readBatch(ctx, xlsx)
	if err != nil {
		return BatchResult{}, err
	}
	index := map[string]int{}
	for i, h := range header {
		if field, ok := columns[strings.ToLower(strings.TrimSpace(h))]; ok {
			index[field] = i
		}
	}
	var missing []problem.InvalidParam
	for _, need := range []string{"idNumber", "name", "phone"} {
		if _, ok := index[need]; !ok {
			missing = append(missing, problem.Field("header", "missing column "+need+" (e.g. 证件号码, 姓名, 手机号码)"))
		}
	}
	if len(missing) > 0 {
		return BatchResult{}, problem.Invalid("the header row lacks required columns", missing...)
	}
	cell := func(row []string, field string) string {
		if i, ok := index[field]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}

	res := BatchResult{BatchID: newBatchID()}
	var failedRows [][]string
	for _, br := range rows {
		row := br.cells
		res.Rows++
		req := Request{IDNumber: cell(row, "idNumber"), Name: cell(row, "name"), Phone: cell(row, "phone"),
			EnglishName: cell(row, "englishName"), ChineseName: cell(row, "chineseName"),
			Nationality: cell(row, "nationality"), Ethnicity: cell(row, "ethnicity"), Channel: "employer"}
		_, err := s.Apply(ctx, req, actor)
		if err == nil {
			res.Accepted++
			continue
		}
		p, ok := problem.As(err)
		if !ok || p.Status >= 500 {
			// An outage stops the batch: rows applied so far stay applied (a re-upload
			// reports them as open applications), the rest are not attempted.
			return BatchResult{}, err
		}
		reasons := rowReasons(p)
		res.Failures = append(res.Failures, RowFailure{Row: br.number, Reasons: reasons})
		failedRows = append(failedRows, append(append([]string(nil), row...), strings.Join(reasons, "；")))
	}
	res.Failed = len(res.Failures)
	if res.Result, err = resultWorkbook(header, failedRows); err != nil {
		return BatchResult{}, err
	}
	if s.Reports != nil {
		res.ResultKey = "batches/" + res.BatchID + "/result.xlsx"
		if err := s.Reports.Put(ctx, res.ResultKey, res.Result, XLSXType, ""); err != nil {
			return BatchResult{}, err
		}
	}
	return res, nil
}

type batchRow struct {
	number int // as the spreadsheet shows it
	cells  []string
}

// tooLarge refuses a workbook over a limit; the detail always names the row limit, the
// one an employer can act on.
func tooLarge(reason string) error {
	return problem.New(413, "batch-too-large", "Batch too large",
		fmt.Sprintf("at most %d applicants per upload: %s; split the list", MaxBatchRows, reason)).
		With("maxRows", MaxBatchRows)
}

// readBatch returns the header and the non-blank applicant rows of the first sheet. Rows
// are streamed and reading stops at the first row past MaxBatchRows, so the work is
// bounded by the limit, not by what the file claims; the request deadline is honoured.
func readBatch(ctx context.Context, xlsx []byte) ([]string, []batchRow, error) {
	notXLSX := problem.Invalid("the upload is not an xlsx workbook", problem.Field("file", "not a readable xlsx workbook"))
	zr, err := zip.NewReader(bytes.NewReader(xlsx), int64(len(xlsx)))
	if err != nil {
		return nil, nil, notXLSX
	}
	var unpacked uint64
	for _, part := range zr.File {
		unpacked += part.UncompressedSize64
		if unpacked > maxBatchUnzipBytes {
			return nil, nil, tooLarge(fmt.Sprintf("the workbook unpacks to more than %d MB", maxBatchUnzipBytes>>20))
		}
	}
	f, err := excelize.OpenReader(bytes.NewReader(xlsx), excelize.Options{
		UnzipSizeLimit: maxBatchUnzipBytes, UnzipXMLSizeLimit: maxBatchXMLBytes})
	if err != nil {
		return nil, nil, notXLSX
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, nil, problem.Invalid("the workbook has no sheet", problem.Field("file", "no sheet"))
	}
	it, err := f.Rows(sheets[0])
	if err != nil {
		return nil, nil, notXLSX
	}
	defer it.Close()
	var header []string
	var rows []batchRow
	for n := 1; it.Next(); n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		cells, err := it.Columns()
		if err != nil {
			return nil, nil, notXLSX
		}
		if n == 1 {
			header = cells
			continue
		}
		if isBlank(cells) {
			continue
		}
		if len(rows) == MaxBatchRows {
			return nil, nil, tooLarge(fmt.Sprintf("row %d is applicant %d", n, MaxBatchRows+1))
		}
		rows = append(rows, batchRow{number: n, cells: cells})
	}
	if err := it.Error(); err != nil {
		return nil, nil, notXLSX
	}
	if header == nil || len(rows) == 0 {
		return nil, nil, problem.Invalid("the first sheet needs a header row and at least one applicant", problem.Field("file", "no rows"))
	}
	return header, rows, nil
}

// rowReasons names each field and why, or the rule that refused the row.
func rowReasons(p *problem.Problem) []string {
	var out []string
	for _, f := range p.InvalidParams {
		out = append(out, f.Name+": "+f.Reason)
	}
	if len(out) == 0 {
		out = append(out, p.Detail)
	}
	return out
}

// resultWorkbook lists the failed rows with the original columns and a reason column.
func resultWorkbook(header []string, failed [][]string) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	write := func(r int, values []string) error {
		for c, v := range values {
			name, err := excelize.CoordinatesToCellName(c+1, r)
			if err != nil {
				return err
			}
			if err := f.SetCellStr(sheet, name, v); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(1, append(append([]string(nil), header...), "失败原因")); err != nil {
		return nil, err
	}
	for i, row := range failed {
		// Pad short rows so the reason lands in the reason column.
		padded := make([]string, len(header))
		copy(padded, row[:len(row)-1])
		if err := write(i+2, append(padded, row[len(row)-1])); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func isBlank(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func newBatchID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "b_" + hex.EncodeToString(b[:])
}
