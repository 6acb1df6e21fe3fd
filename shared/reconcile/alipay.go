package reconcile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Alipay merchant bill (alipay.data.dataservice.bill.downloadurl.query, bill_type=trade):
// a zip whose entry "…_业务明细.csv" (entry names and content in GBK) has '#' comment lines
// before and after a header row and the detail rows. Rows of 业务类型 交易 are payments
// keyed by 商户订单号 for 订单金额; rows of 退款 are refunds keyed by 退款批次号/请求号 for
// the absolute 订单金额 (the file writes refunds negative). ID-like values carry a trailing
// TAB and sometimes a backtick: both are trimmed. The footer "#交易合计：N笔，商家实收共X元"
// and "#退款合计：M笔，商家实收退款共-Z元" are checked: N+M rows, X−Z net 商家实收.

var alipayCols = struct{ order, kind, done, amount, received, refundNo string }{
	"商户订单号", "业务类型", "完成时间", "订单金额（元）", "商家实收（元）", "退款批次号/请求号",
}

var (
	alipayAccount = regexp.MustCompile(`^#账号：\[(\d+)\]`)
	alipayTrade   = regexp.MustCompile(`^#交易合计：(\d+)笔，商家实收共(-?[\d.,]+)元`)
	alipayRefund  = regexp.MustCompile(`^#退款合计：(\d+)笔，商家实收退款共(-?[\d.,]+)元`)
)

// gbk decodes GBK (read as GB18030, its superset, so rare characters outside GBK survive).
func gbk(b []byte) (string, error) {
	out, _, err := transform.Bytes(simplifiedchinese.GB18030.NewDecoder(), b)
	return string(out), err
}

// ParseAlipayZip reads the 业务明细 entry of an Alipay bill zip.
func ParseAlipayZip(zr *zip.Reader, out Emitter) (ParseReport, error) {
	for _, f := range zr.File {
		name := f.Name
		if f.NonUTF8 || !isUTF8(name) {
			if n, err := gbk([]byte(name)); err == nil {
				name = n
			}
		}
		if strings.HasSuffix(name, "业务明细.csv") {
			rc, err := f.Open()
			if err != nil {
				return ParseReport{Format: "alipay"}, err
			}
			defer rc.Close()
			return ParseAlipay(rc, out)
		}
	}
	return ParseReport{Format: "alipay"}, fmt.Errorf("the zip has no …业务明细.csv entry")
}

func isUTF8(s string) bool { return utf8.ValidString(s) }

// ParseAlipay reads the GBK 业务明细 CSV itself.
func ParseAlipay(r io.Reader, out Emitter) (ParseReport, error) {
	rep := ParseReport{Format: "alipay"}
	sc := bufio.NewScanner(transform.NewReader(r, simplifiedchinese.GB18030.NewDecoder()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var col map[string]int
	var line, receivedRead int64
	var account []byte
	var declared [2]struct {
		n   int64
		fen int64
		ok  bool
	}
	for sc.Scan() {
		line++
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if l[0] == '#' {
			s := string(l)
			if m := alipayAccount.FindStringSubmatch(s); m != nil {
				account = []byte(m[1])
			}
			for i, re := range []*regexp.Regexp{alipayTrade, alipayRefund} {
				if m := re.FindStringSubmatch(s); m != nil {
					n, err1 := parseInt([]byte(m[1]))
					fen, err2 := ParseYuan([]byte(m[2]))
					if err1 != nil || err2 != nil {
						rep.malformed(line, "footer totals unreadable")
						continue
					}
					declared[i].n, declared[i].fen, declared[i].ok = n, fen, true
				}
			}
			continue
		}
		fields := splitCSV(l)
		for i := range fields {
			fields[i] = bytes.Trim(fields[i], " \t`")
		}
		if col == nil {
			col = headerIndex(fields)
			for _, c := range []string{alipayCols.order, alipayCols.kind, alipayCols.amount, alipayCols.received} {
				if _, ok := col[c]; !ok {
					return rep, fmt.Errorf("line %d: not an Alipay 业务明细 header (no %s)", line, c)
				}
			}
			continue
		}
		get := func(name string) []byte {
			if i, ok := col[name]; ok && i < len(fields) {
				return fields[i]
			}
			return nil
		}
		if len(fields) < len(col) {
			rep.malformed(line, fmt.Sprintf("want %d columns, got %d", len(col), len(fields)))
			continue
		}
		amt, err1 := ParseYuan(get(alipayCols.amount))
		recv, err2 := ParseYuan(get(alipayCols.received))
		if err1 != nil || err2 != nil {
			rep.malformed(line, "amount: not a decimal 元 amount")
			continue
		}
		row := Row{Line: line, Merchant: account, Status: StatusSuccess, AmountFen: abs(amt), Time: timeField(get(alipayCols.done))}
		switch string(get(alipayCols.kind)) {
		case "交易":
			row.Kind, row.Key = KindPay, get(alipayCols.order)
		case "退款":
			row.Kind, row.Key = KindRefund, get(alipayCols.refundNo)
		default:
			rep.malformed(line, alipayCols.kind+": want 交易 or 退款")
			continue
		}
		if row.Time == 0 || len(row.Key) == 0 {
			rep.malformed(line, "完成时间 or the order/refund number is missing")
			continue
		}
		receivedRead += recv
		rep.Rows++
		out.Emit(&row)
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if col == nil {
		return rep, fmt.Errorf("no header row in the Alipay bill")
	}
	c := &rep.Control
	c.Declared = declared[0].ok
	c.Count = declared[0].n + declared[1].n
	c.SumFen = declared[0].fen + declared[1].fen
	c.ReadRows, c.ReadFen = rep.Rows, receivedRead
	c.check()
	return rep, nil
}
