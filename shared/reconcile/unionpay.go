package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"time"
)

// UnionPay 全渠道 merchant reconciliation file (ZM_…): fixed-width fields in GBK with one
// separator byte between fields, widths as the acquirer SDK's parser has them. Offsets are
// BYTE offsets: a line is sliced first and each field decoded after, so a Chinese 二级商户
// 简称 cannot shift the columns. The file has no footer totals; its digest is checked by
// the caller (statement manifest).
//
// Key: 商户订单号 (orderId). 交易类型 01 is a payment; 04 (退货) and 31 (消费撤销) are
// refunds. 交易金额 is n12 fen. 交易传输时间 is MMDDhhmmss without a year: the year comes
// from the settlement date, the 12/31 → 01/01 rollover included.

var zmWidths = []int{3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2, 6, 2, 4, 32, 1, 21, 15, 1, 15,
	32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98}

// ZM field indexes used here.
const (
	zmTime       = 4
	zmAmount     = 6
	zmQueryID    = 9
	zmOrderID    = 11
	zmTxnType    = 19
	zmMerchant   = 27
	zmSubName    = 30
	zmNetSettled = 32
)

// ZMLineLen is the byte length of a ZM line without its line end.
var ZMLineLen = func() int {
	n := len(zmWidths) - 1
	for _, w := range zmWidths {
		n += w
	}
	return n
}()

// ZMField slices field i of a ZM line (no decoding).
func ZMField(line []byte, i int) []byte {
	off := 0
	for k := 0; k < i; k++ {
		off += zmWidths[k] + 1
	}
	return line[off : off+zmWidths[i]]
}

// ZMSubMerchantName decodes the GBK 二级商户简称 of a line (for reports; not matched on).
func ZMSubMerchantName(line []byte) (string, error) {
	s, err := gbk(bytes.TrimRight(ZMField(line, zmSubName), " "))
	return s, err
}

// ParseUnionPayZM reads a ZM file for settlement date settle and emits its rows.
func ParseUnionPayZM(r io.Reader, settle time.Time, out Emitter) (ParseReport, error) {
	rep := ParseReport{Format: "unionpay-zm"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	sy, sm, _ := settle.In(China).Date()
	var line int64
	for sc.Scan() {
		line++
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if len(l) != ZMLineLen {
			rep.malformed(line, fmt.Sprintf("want %d bytes, got %d", ZMLineLen, len(l)))
			continue
		}
		f := func(i int) []byte { return bytes.TrimSpace(ZMField(l, i)) }
		amt, err := parseInt(f(zmAmount))
		if err != nil || amt < 0 {
			rep.malformed(line, "交易金额: want 12 digits of fen")
			continue
		}
		ts := f(zmTime)
		if len(ts) != 10 {
			rep.malformed(line, "交易传输时间: want MMDDhhmmss")
			continue
		}
		mm := int(ts[0]-'0')*10 + int(ts[1]-'0')
		year := sy
		if mm == 12 && sm == time.January {
			year--
		} else if mm == 1 && sm == time.December {
			year++
		}
		full := fmt.Appendf(nil, "%04d-%s-%s %s:%s:%s", year, ts[0:2], ts[2:4], ts[4:6], ts[6:8], ts[8:10])
		t, err := ParseChinaTime(full)
		if err != nil {
			rep.malformed(line, "交易传输时间: want MMDDhhmmss")
			continue
		}
		row := Row{Line: line, Key: f(zmOrderID), Merchant: f(zmMerchant), AmountFen: amt, Time: t, Status: StatusSuccess}
		switch string(f(zmTxnType)) {
		case "01":
			row.Kind = KindPay
		case "04", "31":
			row.Kind = KindRefund
		default:
			rep.malformed(line, "交易类型: want 01, 04 or 31")
			continue
		}
		if len(row.Key) == 0 {
			rep.malformed(line, "商户订单号 is empty")
			continue
		}
		rep.Rows++
		rep.Control.ReadFen += signed(row.Kind, amt)
		out.Emit(&row)
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	rep.Control.ReadRows = rep.Rows
	rep.Control.check()
	return rep, nil
}
