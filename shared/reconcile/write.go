package reconcile

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"github.com/sscard/platform/shared/card"
)

// Writers of each statement format: the simulated payment channel, the simulated bank
// and hospital use them to drop their files, and tests build real-shaped samples with
// them. They write what the parsers read, including the GBK encodings and the totals.

// StatementRow is one row to write.
type StatementRow struct {
	Key       string // merchant order number (pay) or refund number (refund); card number
	Order     string // for a refund: the order it refunds
	Merchant  string
	Kind      Kind
	Status    Status
	AmountFen int64
	Time      time.Time
	Name      string // goods name / sub-merchant name (may be Chinese)
}

func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

func cst(t time.Time) string { return t.In(China).Format("2006-01-02 15:04:05") }

// WriteWeChat writes a WeChat Pay trade bill, APIv3 layout (v3) or v2.
func WriteWeChat(w io.Writer, rows []StatementRow, v3 bool) error {
	var b strings.Builder
	if v3 {
		b.WriteString("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n")
	} else {
		b.WriteString("交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率\r\n")
	}
	var settle, refund int64
	for i, r := range rows {
		state, refundNo, refundAmt, refundState, order := "SUCCESS", "", int64(0), "", r.Key
		if r.Kind == KindRefund {
			state, refundNo, refundAmt, order = "REFUND", r.Key, r.AmountFen, r.Order
			refundState = map[Status]string{StatusSuccess: "SUCCESS", StatusProcessing: "PROCESSING"}[r.Status]
			if refundState == "" {
				refundState = "FAIL"
			}
		}
		orderAmt := r.AmountFen
		if r.Kind == KindRefund {
			orderAmt = 0
		}
		settle += orderAmt
		refund += refundAmt
		f := []string{cst(r.Time), "wx2421b1c4370ec43b", "1900000100", r.Merchant, "", fmt.Sprintf("42000000%020d", i), order,
			"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", state, "OTHERS", "CNY", yuan(orderAmt), "0.00", refundWx(refundNo, i), refundNo,
			yuan(refundAmt), "0.00", refundKind(refundNo), refundState, r.Name, "", "0.00000", "0.60%"}
		if v3 {
			f = append(f, yuan(orderAmt), yuan(refundAmt), "")
		}
		b.WriteString("`" + strings.Join(f, ",`") + "\r\n")
	}
	if v3 {
		b.WriteString("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n")
		fmt.Fprintf(&b, "`%d,`%s,`%s,`0.00,`0.00000,`%s,`%s\r\n", len(rows), yuan(settle), yuan(refund), yuan(settle), yuan(refund))
	} else {
		b.WriteString("总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\r\n")
		fmt.Fprintf(&b, "`%d,`%s,`%s,`0.00,`0.00000\r\n", len(rows), yuan(settle), yuan(refund))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func refundWx(no string, i int) string {
	if no == "" {
		return ""
	}
	return fmt.Sprintf("50000000%020d", i)
}

func refundKind(no string) string {
	if no == "" {
		return ""
	}
	return "ORIGINAL"
}

func toGBK(s string) []byte {
	out, _, err := transform.Bytes(simplifiedchinese.GB18030.NewEncoder(), []byte(s))
	if err != nil {
		panic(err) // only text a writer made itself
	}
	return out
}

// WriteAlipayZip writes an Alipay bill zip for account pid and date day: GBK entry names
// and content, comment header and footer with the totals.
func WriteAlipayZip(w io.Writer, pid string, day time.Time, rows []StatementRow) error {
	var b strings.Builder
	d := day.In(China)
	b.WriteString("#支付宝业务明细查询\r\n#账号：[" + pid + "]\r\n")
	fmt.Fprintf(&b, "#起始日期：[%s 00:00:00]   终止日期：[%s 00:00:00]\r\n", d.Format("2006年01月02日"), d.AddDate(0, 0, 1).Format("2006年01月02日"))
	b.WriteString("#-----------------------------------------业务明细列表----------------------------------------\r\n")
	b.WriteString("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\r\n")
	var tn, rn int64
	var tf, rf int64
	for i, r := range rows {
		kind, order, refundNo, amt := "交易", r.Key, "", r.AmountFen
		if r.Kind == KindRefund {
			kind, order, refundNo, amt = "退款", r.Order, r.Key, -r.AmountFen
			rn++
			rf += amt
		} else {
			tn++
			tf += amt
		}
		f := []string{fmt.Sprintf("2026%024d\t", i), order + "\t", kind, r.Name, cst(r.Time), cst(r.Time), "", "", "", "",
			"lin***@example.com", yuan(amt), yuan(amt), "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00", "0.00", refundNo + "\t",
			yuan(-amt * 6 / 1000), "0.00", ""}
		b.WriteString(strings.Join(f, ",") + "\r\n")
	}
	b.WriteString("#-----------------------------------------业务明细列表结束------------------------------------\r\n")
	fmt.Fprintf(&b, "#交易合计：%d笔，商家实收共%s元，商家优惠共0.00元\r\n", tn, yuan(tf))
	fmt.Fprintf(&b, "#退款合计：%d笔，商家实收退款共%s元，商家优惠退款共0.00元\r\n", rn, yuan(rf))
	b.WriteString("#导出时间：[" + d.AddDate(0, 0, 1).Format("2006年01月02日") + " 08:10:11]\r\n")
	zw := zip.NewWriter(w)
	base := pid + "0156_" + d.Format("20060102")
	for _, e := range []struct{ name, body string }{
		{base + "_业务明细.csv", b.String()},
		{base + "_业务明细(汇总).csv", "#支付宝业务汇总查询\r\n"},
	} {
		// GBK names, as Alipay writes them (the UTF-8 flag is not set).
		f, err := zw.CreateHeader(&zip.FileHeader{Name: string(toGBK(e.name)), Method: zip.Deflate, NonUTF8: true})
		if err != nil {
			return err
		}
		if _, err := f.Write(toGBK(e.body)); err != nil {
			return err
		}
	}
	return zw.Close()
}

// ZMLine builds one ZM line from field values (padded with spaces, numbers with zeros by
// the caller), each value given as the bytes it is written as.
func ZMLine(values map[int][]byte) []byte {
	var b bytes.Buffer
	for i, w := range zmWidths {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := values[i]
		if len(v) > w {
			v = v[:w]
		}
		b.Write(v)
		b.Write(bytes.Repeat([]byte(" "), w-len(v)))
	}
	return b.Bytes()
}

// WriteUnionPayZM writes a ZM file (GBK, CRLF).
func WriteUnionPayZM(w io.Writer, rows []StatementRow) error {
	for i, r := range rows {
		txnType := "01"
		if r.Kind == KindRefund {
			txnType = "04"
		}
		l := ZMLine(map[int][]byte{
			0: []byte("S22"), 3: fmt.Appendf(nil, "%06d", i%1000000), zmTime: []byte(r.Time.In(China).Format("0102150405")),
			5: []byte("6216***********0018"), zmAmount: fmt.Appendf(nil, "%012d", r.AmountFen), zmQueryID: fmt.Appendf(nil, "%021d", i),
			zmOrderID: []byte(r.Key), zmTxnType: []byte(txnType), zmMerchant: []byte(r.Merchant), zmSubName: toGBK(r.Name),
			zmNetSettled: fmt.Appendf(nil, "C%012d", r.AmountFen),
		})
		if _, err := w.Write(append(l, '\r', '\n')); err != nil {
			return err
		}
	}
	return nil
}

// WriteHIS writes a HIS settlement export (the format his.go documents); the rows were
// paid through payChannel.
func WriteHIS(w io.Writer, hospital, payChannel string, day time.Time, rows []StatementRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#HIS-SETTLEMENT v1,hospital=%s,date=%s\n", hospital, day.In(China).Format("2006-01-02"))
	b.WriteString("his_serial,order_no,pay_channel,visit_type,amount_fen,status,settled_at\n")
	var sum int64
	for i, r := range rows {
		st := "settled"
		if r.Kind == KindRefund {
			st = "reversed"
		}
		sum += signed(r.Kind, r.AmountFen)
		fmt.Fprintf(&b, "H%s%06d,%s,%s,outpatient,%d,%s,%s\n", day.In(China).Format("20060102"), i, r.Key, payChannel, r.AmountFen, st,
			cst(r.Time))
	}
	fmt.Fprintf(&b, "#END,count=%d,sum_fen=%d\n", len(rows), sum)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCardStatus writes a bank card-status file (the format cardstatus.go documents).
func WriteCardStatus(w io.Writer, bank string, day time.Time, codes card.Codes, rows []StatementRow) error {
	var b strings.Builder
	fmt.Fprintf(&b, "H|%s|%s\n", bank, day.In(China).Format("20060102"))
	for _, r := range rows {
		fmt.Fprintf(&b, "D|%s|%s|%s\n", r.Key, codes.Code(card.Status(r.Status.String())), cst(r.Time))
	}
	fmt.Fprintf(&b, "T|%d\n", len(rows))
	_, err := io.WriteString(w, b.String())
	return err
}
