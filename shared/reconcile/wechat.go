package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// WeChat Pay trade bill (交易账单, bill_type=ALL): a detail header, detail rows, a summary
// header and one summary row, comma-separated, every value of a detail or summary row
// prefixed by a backtick. APIv3 bills have 27 detail columns (应结订单金额 … 费率备注),
// the older v2 bills 24 (总金额 …); columns are found by header name, so both read.
//
// A row with 交易状态 SUCCESS is a payment, keyed by 商户订单号, for 订单金额 (v3) or 总金额
// (v2). A row with 交易状态 REFUND is a refund, keyed by 商户退款单号, for 退款金额, in
// the state of 退款状态. The summary's 总交易单数, 应结订单总金额 and 退款总金额 are checked
// against the rows: Control.SumFen is 应结订单总金额 − 退款总金额.

var wechatCols = struct{ time, mch, subMch, subMchV2, order, state, settle, refundNo, refund, refundState, orderAmt, totalV2 string }{
	"交易时间", "商户号", "特约商户号", "子商户号", "商户订单号", "交易状态", "应结订单金额", "商户退款单号", "退款金额", "退款状态", "订单金额", "总金额",
}

// ParseWeChat reads a WeChat Pay trade bill and emits its rows.
func ParseWeChat(r io.Reader, out Emitter) (ParseReport, error) {
	rep := ParseReport{Format: "wechat"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var col map[string]int
	var line int64
	inSummary, summaryRead := false, false
	var sumHeader map[string]int
	var settleRead, refundRead int64
	var row Row
	for sc.Scan() {
		line++
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if line == 1 {
			l = bytes.TrimPrefix(l, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		fields := splitCSV(l)
		switch {
		case col == nil:
			col = headerIndex(fields)
			if _, ok := col[wechatCols.order]; !ok {
				return rep, fmt.Errorf("line %d: not a WeChat Pay trade bill header (no %s)", line, wechatCols.order)
			}
			if _, ok := col[wechatCols.orderAmt]; ok {
				rep.Format = "wechat-v3"
			} else if _, ok := col[wechatCols.totalV2]; ok {
				rep.Format = "wechat-v2"
			} else {
				return rep, fmt.Errorf("line %d: bill header has neither %s nor %s", line, wechatCols.orderAmt, wechatCols.totalV2)
			}
			continue
		case !inSummary && len(fields) > 0 && string(fields[0]) == "总交易单数":
			inSummary = true
			sumHeader = headerIndex(fields)
			continue
		case inSummary:
			if summaryRead {
				rep.malformed(line, "a line after the summary row")
				continue
			}
			summaryRead = true
			if err := wechatSummary(fields, sumHeader, &rep.Control); err != "" {
				rep.malformed(line, err)
			}
			continue
		}
		for i := range fields {
			fields[i] = bytes.TrimPrefix(fields[i], []byte("`"))
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
		reason := ""
		row = Row{Line: line, Time: timeField(get(wechatCols.time))}
		if row.Time == 0 {
			reason = wechatCols.time + ": want yyyy-mm-dd hh:mm:ss"
		}
		row.Merchant = get(wechatCols.subMch)
		if len(row.Merchant) == 0 {
			row.Merchant = get(wechatCols.subMchV2)
		}
		if len(row.Merchant) == 0 {
			row.Merchant = get(wechatCols.mch)
		}
		settleField := get(wechatCols.settle)
		if _, v3 := col[wechatCols.settle]; !v3 {
			settleField = get(wechatCols.totalV2) // v2 bills total 总金额 instead
		}
		settle, err1 := ParseYuan(settleField)
		refund, err2 := ParseYuan(get(wechatCols.refund))
		if err1 != nil || err2 != nil {
			reason = "amount: not a decimal 元 amount"
		}
		switch string(get(wechatCols.state)) {
		case "SUCCESS":
			row.Kind, row.Status, row.Key = KindPay, StatusSuccess, get(wechatCols.order)
			amt := get(wechatCols.orderAmt)
			if amt == nil {
				amt = get(wechatCols.totalV2)
			}
			v, err := ParseYuan(amt)
			if err != nil {
				reason = "order amount: not a decimal 元 amount"
			}
			row.AmountFen = v
		case "REFUND":
			row.Kind, row.Key, row.AmountFen = KindRefund, get(wechatCols.refundNo), refund
			switch string(get(wechatCols.refundState)) {
			case "SUCCESS":
				row.Status = StatusSuccess
			case "PROCESSING":
				row.Status = StatusProcessing
			default:
				row.Status = StatusFailed
			}
		default:
			reason = wechatCols.state + ": want SUCCESS or REFUND, got " + quoteShort(get(wechatCols.state))
		}
		if reason == "" && len(row.Key) == 0 {
			reason = "empty merchant order or refund number"
		}
		if reason != "" {
			rep.malformed(line, reason)
			continue
		}
		settleRead += settle
		refundRead += refund
		rep.Rows++
		out.Emit(&row)
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if col == nil {
		return rep, fmt.Errorf("empty WeChat Pay bill")
	}
	// A malformed row is counted by the file but could not be read: the totals check
	// then fails too, as it should.
	rep.Control.ReadRows, rep.Control.ReadFen = rep.Rows, settleRead-refundRead
	rep.Control.check()
	return rep, nil
}

func wechatSummary(fields [][]byte, h map[string]int, c *Control) string {
	get := func(names ...string) []byte {
		for _, n := range names {
			if i, ok := h[n]; ok && i < len(fields) {
				return bytes.TrimPrefix(fields[i], []byte("`"))
			}
		}
		return nil
	}
	n, err := parseInt(get("总交易单数"))
	settle, err1 := ParseYuan(get("应结订单总金额", "总交易额"))
	refund, err2 := ParseYuan(get("退款总金额", "总退款金额"))
	if err != nil || err1 != nil || err2 != nil {
		return "summary row: want 总交易单数, 应结订单总金额 and 退款总金额"
	}
	c.Declared, c.Count, c.SumFen = true, n, settle-refund
	return ""
}

// timeField reads a yyyy-mm-dd hh:mm:ss field (0 when it is not one).
func timeField(b []byte) int64 {
	t, err := ParseChinaTime(bytes.TrimSpace(b))
	if err != nil {
		return 0
	}
	return t
}

// headerIndex maps each column name of a header row to its index.
func headerIndex(fields [][]byte) map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields {
		name := string(bytes.Trim(bytes.TrimSpace(f), "`\t"))
		if _, dup := m[name]; !dup && name != "" {
			m[name] = i
		}
	}
	return m
}

// splitCSV splits one line at commas, honouring double quotes ("" inside quotes is a
// quote). The fields alias the line except where a quote had to be unescaped.
func splitCSV(l []byte) [][]byte {
	var out [][]byte
	for {
		if len(l) > 0 && l[0] == '"' {
			var f []byte
			i := 1
			for i < len(l) {
				if l[i] == '"' {
					if i+1 < len(l) && l[i+1] == '"' {
						f = append(f, '"')
						i += 2
						continue
					}
					i++
					break
				}
				f = append(f, l[i])
				i++
			}
			out = append(out, f)
			l = l[i:]
			if j := bytes.IndexByte(l, ','); j >= 0 {
				l = l[j+1:]
				continue
			}
			return out
		}
		j := bytes.IndexByte(l, ',')
		if j < 0 {
			return append(out, l)
		}
		out = append(out, l[:j])
		l = l[j+1:]
	}
}
