package reconcile

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// ReportInfo heads a report.
type ReportInfo struct {
	RunID        string
	Channel      string
	BusinessDate string
	Totals       Totals
	ControlsOK   bool
}

var classLabels = map[Class]string{
	ClassMatched: "一致", ClassMatchedCrossDay: "跨日一致", ClassLong: "长款", ClassShort: "短款", ClassAmount: "金额不一致",
	ClassStatus: "状态不一致", ClassDuplicate: "重复", ClassPending: "跨日待对", ClassHISMissing: "HIS无结算(待退款)",
	ClassHISExtra: "HIS多结算", ClassHISAmount: "HIS金额不一致",
}

var discrepancyHeader = []string{"序号 seq", "类别 class", "类别名", "来源 side", "交易号 key", "商户 merchant", "方向 kind",
	"平台金额(分)", "渠道金额(分)", "HIS金额(分)", "平台状态", "渠道状态", "差异金额(分)", "交易时间", "文件行号"}

func discrepancyRecord(i int, d Discrepancy) []string {
	at := ""
	if d.Time != 0 {
		at = time.Unix(d.Time, 0).In(China).Format(time.DateTime)
	}
	return []string{strconv.Itoa(i + 1), string(d.Class), classLabels[d.Class], d.Side.String(), d.Key, d.Merchant, d.Kind.String(),
		strconv.FormatInt(d.PlatformFen, 10), strconv.FormatInt(d.ChannelFen, 10), strconv.FormatInt(d.HISFen, 10),
		d.PlatformStatus.String(), d.ChannelStatus.String(), strconv.FormatInt(d.Fen, 10), at, strconv.FormatInt(d.Line, 10)}
}

func totalsRecords(info ReportInfo) [][]string {
	t := info.Totals
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return [][]string{
		{"对账批次 run", info.RunID}, {"渠道 channel", info.Channel}, {"业务日期 business date", info.BusinessDate},
		{"平台笔数", i(t.PlatformRows)}, {"平台金额(分)", i(t.PlatformFen)}, {"渠道笔数", i(t.ChannelRows)}, {"渠道金额(分)", i(t.ChannelFen)},
		{"HIS笔数", i(t.HISRows)}, {"HIS金额(分)", i(t.HISFen)}, {"文件控制合计一致", strconv.FormatBool(info.ControlsOK)},
	}
}

// WriteCSV is the report as one UTF-8 CSV (with BOM, for Excel): the control totals, the
// summary and the discrepancies, each section after a blank line.
func WriteCSV(info ReportInfo, res *Result) []byte {
	var b bytes.Buffer
	b.WriteString("\xef\xbb\xbf")
	w := csv.NewWriter(&b)
	_ = w.WriteAll(totalsRecords(info))
	_ = w.Write(nil)
	_ = w.Write([]string{"商户 merchant", "类别 class", "类别名", "笔数 count", "金额(分) fen"})
	for _, s := range res.Summary {
		_ = w.Write([]string{s.Merchant, string(s.Class), classLabels[s.Class], strconv.FormatInt(s.Count, 10), strconv.FormatInt(s.Fen, 10)})
	}
	_ = w.Write(nil)
	_ = w.Write(discrepancyHeader)
	for i, d := range res.Discrepancies {
		_ = w.Write(discrepancyRecord(i, d))
	}
	w.Flush()
	return b.Bytes()
}

// WriteXLSX is the report as a workbook: 汇总 (totals and summary) and 差异明细
// (discrepancies), streamed so a large run stays in bounded memory.
func WriteXLSX(info ReportInfo, res *Result) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "汇总"); err != nil {
		return nil, err
	}
	sw, err := f.NewStreamWriter("汇总")
	if err != nil {
		return nil, err
	}
	row := 1
	put := func(sw *excelize.StreamWriter, vals ...any) error {
		cell, _ := excelize.CoordinatesToCellName(1, row)
		row++
		return sw.SetRow(cell, vals)
	}
	for _, r := range totalsRecords(info) {
		if err := put(sw, r[0], r[1]); err != nil {
			return nil, err
		}
	}
	row++
	if err := put(sw, "商户 merchant", "类别 class", "类别名", "笔数 count", "金额(分) fen"); err != nil {
		return nil, err
	}
	for _, s := range res.Summary {
		if err := put(sw, s.Merchant, string(s.Class), classLabels[s.Class], s.Count, s.Fen); err != nil {
			return nil, err
		}
	}
	if err := sw.Flush(); err != nil {
		return nil, err
	}
	if _, err := f.NewSheet("差异明细"); err != nil {
		return nil, err
	}
	sw, err = f.NewStreamWriter("差异明细")
	if err != nil {
		return nil, err
	}
	row = 1
	hdr := make([]any, len(discrepancyHeader))
	for i, h := range discrepancyHeader {
		hdr[i] = h
	}
	if err := put(sw, hdr...); err != nil {
		return nil, err
	}
	for i, d := range res.Discrepancies {
		rec := discrepancyRecord(i, d)
		vals := make([]any, len(rec))
		for k, v := range rec {
			vals[k] = v
		}
		for _, k := range []int{0, 7, 8, 9, 12, 14} { // numbers as numbers
			n, _ := strconv.ParseInt(rec[k], 10, 64)
			vals[k] = n
		}
		if err := put(sw, vals...); err != nil {
			return nil, err
		}
	}
	if err := sw.Flush(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
