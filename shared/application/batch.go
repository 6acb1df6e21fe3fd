package application

import (
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

// ApplyBatch applies every row of an xlsx list on behalf of an employer.
func (s *Service) ApplyBatch(ctx context.Context, xlsx []byte, actor Actor) (BatchResult, error) {
	f, err := excelize.OpenReader(bytes.NewReader(xlsx))
	if err != nil {
		return BatchResult{}, problem.Invalid("the upload is not an xlsx workbook", problem.Field("file", "not a readable xlsx workbook"))
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return BatchResult{}, problem.Invalid("the workbook has no sheet", problem.Field("file", "no sheet"))
	}
	rows, err := f.GetRows(sheets[0])
	if err != nil || len(rows) < 2 {
		return BatchResult{}, problem.Invalid("the first sheet needs a header row and at least one applicant", problem.Field("file", "no rows"))
	}
	if len(rows)-1 > MaxBatchRows {
		return BatchResult{}, problem.Invalid(fmt.Sprintf("at most %d applicants per upload", MaxBatchRows), problem.Field("file", "too many rows"))
	}
	header := rows[0]
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
	for n, row := range rows[1:] {
		if isBlank(row) {
			continue
		}
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
		res.Failures = append(res.Failures, RowFailure{Row: n + 2, Reasons: reasons})
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
