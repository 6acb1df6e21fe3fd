package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
)

// HIS settlement export: no public specification exists, so this is ours (documented in
// docs/reconcile.md). UTF-8, comma-separated:
//
//	#HIS-SETTLEMENT v1,hospital=<id>,date=<yyyy-mm-dd>
//	his_serial,order_no,pay_channel,visit_type,amount_fen,status,settled_at
//	H20261203000001,P2026120300000001,wechat,outpatient,1250,settled,2026-12-03 09:41:07
//	…
//	#END,count=<rows>,sum_fen=<Σ amount_fen of settled rows − Σ of reversed rows>
//
// order_no is the platform's order number (系统订单号), the key; pay_channel the payment
// channel (wechat, alipay, unionpay: a run reads the rows of its channel); visit_type outpatient or
// inpatient; status settled (结算) or reversed (冲正/退费, a refund keyed by the platform's
// refund number). The hospital id is the merchant.

var (
	hisHead = regexp.MustCompile(`^#HIS-SETTLEMENT v1,hospital=([A-Za-z0-9_-]{1,32}),date=(\d{4}-\d{2}-\d{2})$`)
	hisEnd  = regexp.MustCompile(`^#END,count=(\d+),sum_fen=(-?\d+)$`)
)

// ParseHIS reads a HIS settlement export and emits the rows of payment channel channel
// ("" for all). The totals check covers the whole file.
func ParseHIS(r io.Reader, channel string, out Emitter) (ParseReport, error) {
	rep := ParseReport{Format: "his-v1"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var line int64
	var hospital []byte
	header, ended := false, false
	for sc.Scan() {
		line++
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if len(l) == 0 {
			continue
		}
		switch {
		case line == 1:
			m := hisHead.FindSubmatch(l)
			if m == nil {
				return rep, fmt.Errorf("line 1: want #HIS-SETTLEMENT v1,hospital=…,date=yyyy-mm-dd")
			}
			hospital = append([]byte(nil), m[1]...)
			continue
		case !header:
			if string(l) != "his_serial,order_no,pay_channel,visit_type,amount_fen,status,settled_at" {
				return rep, fmt.Errorf("line %d: not the HIS v1 column header", line)
			}
			header = true
			continue
		case ended:
			rep.malformed(line, "a line after #END")
			continue
		case l[0] == '#':
			m := hisEnd.FindSubmatch(l)
			if m == nil {
				rep.malformed(line, "unknown comment line")
				continue
			}
			n, _ := parseInt(m[1])
			fen, _ := parseInt(m[2])
			rep.Control.Declared, rep.Control.Count, rep.Control.SumFen = true, n, fen
			ended = true
			continue
		}
		fs := bytes.Split(l, []byte(","))
		if len(fs) != 7 {
			rep.malformed(line, fmt.Sprintf("want 7 fields, got %d", len(fs)))
			continue
		}
		payChannel := string(fs[2])
		fs = append(fs[:2], fs[3:]...)
		amt, err := parseInt(fs[3])
		t := timeField(fs[5])
		row := Row{Line: line, Key: fs[1], Merchant: hospital, AmountFen: amt, Time: t, Status: StatusSuccess}
		switch string(fs[4]) {
		case "settled":
			row.Kind = KindPay
		case "reversed":
			row.Kind = KindRefund
		default:
			rep.malformed(line, "status: want settled or reversed")
			continue
		}
		if v := string(fs[2]); v != "outpatient" && v != "inpatient" {
			rep.malformed(line, "visit_type: want outpatient or inpatient")
			continue
		}
		if err != nil || amt < 0 || t == 0 || len(row.Key) == 0 {
			rep.malformed(line, "order_no, amount_fen or settled_at is not readable")
			continue
		}
		rep.Control.ReadRows++
		rep.Control.ReadFen += signed(row.Kind, amt)
		if channel == "" || payChannel == channel {
			rep.Rows++
			out.Emit(&row)
		}
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if !ended {
		rep.malformed(line, "no #END line: the export may be cut short")
	}
	rep.Control.check()
	if !ended {
		rep.Control.OK = false
		rep.Control.Detail = "no #END line"
	}
	return rep, nil
}
