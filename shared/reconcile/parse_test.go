package reconcile

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sscard/platform/shared/card"
)

type got struct {
	Key, Merchant string
	Kind          Kind
	Status        Status
	Fen           int64
	Line          int64
	Time          int64
}

func collect(rows *[]got) Emitter {
	return EmitFunc(func(r *Row) {
		*rows = append(*rows, got{string(r.Key), string(r.Merchant), r.Kind, r.Status, r.AmountFen, r.Line, r.Time})
	})
}

var day = time.Date(2026, 12, 3, 0, 0, 0, 0, China)

func sampleRows() []StatementRow {
	return []StatementRow{
		{Key: "P2026120300000001", Merchant: "1900000109", Kind: KindPay, Status: StatusSuccess, AmountFen: 1250, Time: day.Add(9 * time.Hour), Name: "门诊缴费-张三丰"},
		{Key: "P2026120300000002", Merchant: "1900000109", Kind: KindPay, Status: StatusSuccess, AmountFen: 88000, Time: day.Add(10 * time.Hour), Name: "住院预交金（䶮）"},
		{Key: "R2026120300000001", Order: "P2026120300000001", Merchant: "1900000109", Kind: KindRefund, Status: StatusSuccess, AmountFen: 250, Time: day.Add(11 * time.Hour), Name: "退费"},
	}
}

func checkSample(t *testing.T, rows []got) {
	t.Helper()
	if len(rows) != 3 {
		t.Fatalf("want 3 rows, got %+v", rows)
	}
	if rows[0].Key != "P2026120300000001" || rows[0].Fen != 1250 || rows[0].Kind != KindPay || rows[0].Status != StatusSuccess ||
		rows[0].Time != day.Add(9*time.Hour).Unix() {
		t.Errorf("row 1: %+v", rows[0])
	}
	if rows[1].Fen != 88000 {
		t.Errorf("row 2: %+v", rows[1])
	}
	if rows[2].Key != "R2026120300000001" || rows[2].Fen != 250 || rows[2].Kind != KindRefund {
		t.Errorf("refund row: %+v", rows[2])
	}
}

func TestWeChat_V3AndV2(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		var b bytes.Buffer
		if err := WriteWeChat(&b, sampleRows(), v3); err != nil {
			t.Fatal(err)
		}
		var rows []got
		rep, err := ParseWeChat(&b, collect(&rows))
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, rows)
		want := map[bool]string{true: "wechat-v3", false: "wechat-v2"}[v3]
		if rep.Format != want || !rep.Control.OK || !rep.Control.Declared || rep.Control.Count != 3 || rep.Control.SumFen != 1250+88000-250 {
			t.Errorf("%s: report %+v", want, rep)
		}
	}
}

func TestWeChat_MalformedLineAndWrongSummary(t *testing.T) {
	var b bytes.Buffer
	_ = WriteWeChat(&b, sampleRows(), true)
	lines := strings.Split(b.String(), "\r\n")
	lines[2] = strings.Replace(lines[2], "`880.00", "`88o.00", 1) // line 3: the second row
	var rows []got
	rep, err := ParseWeChat(strings.NewReader(strings.Join(lines, "\r\n")), collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || len(rep.Malformed) != 1 || rep.Malformed[0].Line != 3 {
		t.Fatalf("want the bad line 3 reported and two rows read: %+v %+v", rows, rep.Malformed)
	}
	if rep.Control.OK {
		t.Errorf("totals cannot agree when a row was unreadable: %+v", rep.Control)
	}

	b.Reset()
	_ = WriteWeChat(&b, sampleRows(), true)
	s := strings.Replace(b.String(), "`3,`892.50,", "`3,`892.60,", 1)
	rows = nil
	rep, _ = ParseWeChat(strings.NewReader(s), collect(&rows))
	if len(rows) != 3 || rep.Control.OK || !strings.Contains(rep.Control.Detail, "89010") {
		t.Errorf("a wrong summary total: want the control to fail, got %+v", rep.Control)
	}
}

func TestAlipay_GBKZipWithFooter(t *testing.T) {
	var b bytes.Buffer
	if err := WriteAlipayZip(&b, "2088123456780156", day, sampleRows()); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains([]byte(zr.File[0].Name), toGBK("业务明细")) {
		t.Fatalf("entry names must be GBK like Alipay's: %q", zr.File[0].Name)
	}
	var rows []got
	rep, err := ParseAlipayZip(zr, collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, rows)
	if rows[0].Merchant != "2088123456780156" || rows[0].Line != 6 {
		t.Errorf("merchant from #账号 and line numbers: %+v", rows[0])
	}
	if !rep.Control.OK || rep.Control.Count != 3 || rep.Control.SumFen != 1250+88000-250 {
		t.Errorf("control %+v", rep.Control)
	}

	// The same detail file with a wrong footer total and a malformed line.
	detail := func(mod func(string) string) *ParseReport {
		var rows []got
		content := mod(decodeEntry(t, zr))
		rep, err := ParseAlipay(bytes.NewReader(toGBK(content)), collect(&rows))
		if err != nil {
			t.Fatal(err)
		}
		return &rep
	}
	r := detail(func(s string) string {
		return strings.Replace(s, "商家实收共892.50元", "商家实收共892.51元", 1)
	})
	if r.Control.OK || r.Rows != 3 {
		t.Errorf("wrong footer: %+v", r.Control)
	}
	r = detail(func(s string) string { return strings.Replace(s, ",880.00,880.00,", ",880.00,88x.00,", 1) })
	if r.Rows != 2 || len(r.Malformed) != 1 || r.Malformed[0].Line != 7 {
		t.Errorf("malformed line: %+v", r)
	}
}

func decodeEntry(t *testing.T, zr *zip.Reader) string {
	t.Helper()
	rc, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(rc)
	s, err := gbk(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUnionPayZM_GBKNameDoesNotShiftColumns(t *testing.T) {
	rows := sampleRows()
	rows[0].Name = "东莞市社区卫生服务中心" // 22 GBK bytes in a 32-byte field
	var b bytes.Buffer
	if err := WriteUnionPayZM(&b, rows); err != nil {
		t.Fatal(err)
	}
	first := bytes.SplitN(b.Bytes(), []byte("\r\n"), 2)[0]
	if len(first) != ZMLineLen {
		t.Fatalf("line length %d, want %d", len(first), ZMLineLen)
	}
	if name, err := ZMSubMerchantName(first); err != nil || name != "东莞市社区卫生服务中心" {
		t.Errorf("sub-merchant name: %q %v", name, err)
	}
	if net := string(ZMField(first, zmNetSettled)); net != "C000000001250" {
		t.Errorf("清算净额 after the GBK name: %q", net)
	}
	data := b.String() + "S22 short line\r\n"
	var got []got
	rep, err := ParseUnionPayZM(strings.NewReader(data), day, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, got)
	if len(rep.Malformed) != 1 || rep.Malformed[0].Line != 4 {
		t.Errorf("malformed: %+v", rep.Malformed)
	}

	// MMDD without a year: a 12/31 transaction settled on 01/01 belongs to the year before.
	rows = []StatementRow{{Key: "X1", Kind: KindPay, AmountFen: 1, Time: time.Date(2026, 12, 31, 23, 59, 0, 0, China)}}
	b.Reset()
	_ = WriteUnionPayZM(&b, rows)
	got = nil
	_, _ = ParseUnionPayZM(&b, time.Date(2027, 1, 1, 0, 0, 0, 0, China), collect(&got))
	if len(got) != 1 || got[0].Time != rows[0].Time.Unix() {
		t.Errorf("year rollover: %+v", got)
	}
}

func TestHIS_FooterAndMalformed(t *testing.T) {
	var b bytes.Buffer
	_ = WriteHIS(&b, "dg-clinic-01", "wechat", day, sampleRows())
	var rows []got
	rep, err := ParseHIS(bytes.NewReader(b.Bytes()), "wechat", collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, rows)
	if !rep.Control.OK || rows[0].Merchant != "dg-clinic-01" {
		t.Errorf("%+v", rep)
	}
	bad := strings.Replace(b.String(), "sum_fen=89000", "sum_fen=89001", 1)
	bad = strings.Replace(bad, ",88000,", ",-,", 1)
	rows = nil
	if rep, _ := ParseHIS(bytes.NewReader(b.Bytes()), "alipay", collect(&rows)); len(rows) != 0 || !rep.Control.OK {
		t.Errorf("another channel's rows: want none emitted, the file's totals checked: %+v", rep)
	}
	rows = nil
	rep, _ = ParseHIS(strings.NewReader(bad), "", collect(&rows))
	if rep.Control.OK || len(rows) != 2 || len(rep.Malformed) != 1 || rep.Malformed[0].Line != 4 {
		t.Errorf("%+v", rep)
	}
}

func TestCardStatus(t *testing.T) {
	codes := card.DefaultCodes()
	var b bytes.Buffer
	_ = WriteCardStatus(&b, "ICBC", day, codes, []StatementRow{
		{Key: "A00000001", Status: CardNormal, Time: day}, {Key: "A00000002", Status: CardTemporaryLoss, Time: day}})
	s := strings.Replace(b.String(), "T|2", "T|3", 1) + ""
	s = strings.Replace(s, "D|A00000002|4|", "D|A00000002|4|", 1)
	var rows []got
	rep, err := ParseCardStatus(strings.NewReader(strings.Replace(s, "T|3", "D|A00000003|9|2026-12-03 00:00:00\nT|3", 1)), codes, collect(&rows))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Status != CardTemporaryLoss || rows[0].Merchant != "ICBC" || len(rep.Malformed) != 1 ||
		rep.Malformed[0].Line != 4 || rep.Control.OK {
		t.Errorf("%+v %+v", rows, rep)
	}
}
