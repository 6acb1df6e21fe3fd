//go:build integration

package application

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/xuri/excelize/v2"
)

func workbook(t *testing.T, rows [][]string) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for r, row := range rows {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellStr("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// 001 2.1: valid rows are applied, each failed row comes back with its reasons in a
// workbook that can be fixed and uploaded again.
func TestCardApply_EmployerBatch(t *testing.T) {
	f := newFixture(t)
	_, _ = f.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(ReportBucket)})
	f.svc.Reports = S3Store{Client: f.s3, Bucket: ReportBucket}
	ok1, ok2 := randomResidentID(t), randomResidentID(t)
	bad := ok1[:17] + string("0123456789X"[(strings.Index("0123456789X", ok1[17:])+1)%11]) // wrong check digit
	xlsx := workbook(t, [][]string{
		{"证件号码", "姓名", "手机号码"},
		{ok1, "张三", "13800138001"},
		{ok2, "李四", "13800138002"},
		{bad, "王五", "13800138003"},
		{randomResidentID(t), "赵六", ""},
		{ok1, "张三", "13800138001"}, // the same person again in one list
		{"", "", ""},               // blank rows are skipped
	})
	ctx := context.Background()
	res, err := f.svc.ApplyBatch(ctx, xlsx, Actor{ID: "employer-001", Channel: "employer"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 5 || res.Accepted != 2 || res.Failed != 3 {
		t.Fatalf("want 5 rows, 2 accepted, 3 failed; got %+v", res)
	}
	rows := []int{res.Failures[0].Row, res.Failures[1].Row, res.Failures[2].Row}
	if rows[0] != 4 || rows[1] != 5 || rows[2] != 6 {
		t.Errorf("want failed rows 4, 5, 6 (as the sheet numbers them), got %v", rows)
	}
	if !strings.Contains(strings.Join(res.Failures[0].Reasons, " "), "idNumber") ||
		!strings.Contains(strings.Join(res.Failures[1].Reasons, " "), "phone") {
		t.Errorf("want reasons naming idNumber and phone, got %+v", res.Failures)
	}
	if n := f.count(t, `SELECT count(*) FROM applications WHERE channel = 'employer'`); n != 2 {
		t.Errorf("want 2 employer applications, got %d", n)
	}
	// The result workbook: header + reason column, only the failed rows.
	book, err := excelize.OpenReader(bytes.NewReader(res.Result))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := book.GetRows(book.GetSheetList()[0])
	if len(got) != 4 || got[0][3] != "失败原因" || got[1][0] != bad || got[1][3] == "" {
		t.Errorf("want the 3 failed rows with reasons, got %q", got)
	}
	if _, err := f.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(ReportBucket), Key: aws.String(res.ResultKey)}); err != nil {
		t.Errorf("the result workbook must be stored: %v", err)
	}
	// Not a workbook, or no required columns: a clear 400.
	if _, err := f.svc.ApplyBatch(ctx, []byte("not xlsx"), Actor{}); statusOf(err) != 400 {
		t.Errorf("not a workbook: want 400, got %v", err)
	}
	if _, err := f.svc.ApplyBatch(ctx, workbook(t, [][]string{{"foo"}, {"bar"}}), Actor{}); statusOf(err) != 400 {
		t.Errorf("missing columns: want 400, got %v", err)
	}
}
