// Package reconcile is the daily reconciliation (对账) of one channel and business date:
// the platform's payment ledger against a channel's statement (WeChat Pay, Alipay,
// UnionPay), a hospital HIS settlement export where one exists (three-way), and the
// bank's card-status file against the platform's cards (银社对账). Parsers turn each
// format into Rows; Join matches them in a streaming, partitioned hash join and reports
// discrepancies only, with per-merchant summaries. Money is integer fen throughout.
//
// The package has no HTTP and no storage: functions/reconcile and store.go (Postgres,
// object store) drive it.
package reconcile

import (
	"fmt"
	"time"
)

// China is the time zone of business dates and statement times (UTC+8, no DST).
var China = time.FixedZone("CST", 8*3600)

// Side says where a row comes from.
type Side uint8

const (
	SidePlatform Side = iota // the platform's ledger (or the centre's card statuses)
	SideChannel              // the payment channel's or bank's statement
	SideHIS                  // the hospital HIS settlement export
)

func (s Side) String() string {
	switch s {
	case SidePlatform:
		return "platform"
	case SideChannel:
		return "channel"
	case SideHIS:
		return "his"
	}
	return "?"
}

// Kind is the direction of a money row.
type Kind uint8

const (
	KindPay Kind = iota + 1
	KindRefund
)

func (k Kind) String() string {
	switch k {
	case KindPay:
		return "pay"
	case KindRefund:
		return "refund"
	}
	return ""
}

// Status is a row's state in one vocabulary for every source; parsers map their own
// words onto it. Card statuses serve 银社对账.
type Status uint8

const (
	StatusNone Status = iota
	StatusSuccess
	StatusClosed
	StatusProcessing
	StatusFailed
	StatusRefunded // the pay row of an order that was refunded in full (WeChat 交易状态 REFUND)
	CardNormal
	CardTemporaryLoss
	CardFormalLoss
	CardCancelled
)

var statusNames = [...]string{"", "success", "closed", "processing", "failed", "refunded",
	"normal", "temporary_loss", "formal_loss", "cancelled"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// ParseStatus is the inverse of String ("" → StatusNone, false for an unknown name).
func ParseStatus(name string) (Status, bool) {
	for i, n := range statusNames {
		if n == name {
			return Status(i), true
		}
	}
	return 0, false
}

// Row is one transaction (or one card) as a source states it. The byte slices point
// into the parser's buffer and are valid only during the Emit call.
type Row struct {
	Key       []byte // merchant order number (pay), merchant refund number (refund), card number
	Merchant  []byte // merchant (clinic) id; empty when the source has one merchant
	Kind      Kind
	Status    Status
	AmountFen int64
	Time      int64 // unix seconds
	Line      int64 // line number in the source file (1-based); 0 for rows from the database
	Carried   bool  // a pending row carried over from the previous business date
}

// LineError is a line the parser could not read. It is reported, and the rest of the
// file is read.
type LineError struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Control is a file's own totals (footer or summary line) beside what was read.
type Control struct {
	Declared bool   `json:"declared"` // the file states totals
	Count    int64  `json:"count"`    // rows the file declares
	SumFen   int64  `json:"sumFen"`   // amount the file declares (net: pay minus refund where the file nets)
	ReadRows int64  `json:"readRows"` // rows read
	ReadFen  int64  `json:"readFen"`  // amount read, netted as the file nets it
	OK       bool   `json:"ok"`       // declared totals equal what was read (true when nothing is declared)
	Detail   string `json:"detail,omitempty"`
}

func (c *Control) check() {
	c.OK = !c.Declared || (c.Count == c.ReadRows && c.SumFen == c.ReadFen)
	if !c.OK {
		c.Detail = fmt.Sprintf("footer declares %d rows / %d fen, file holds %d rows / %d fen",
			c.Count, c.SumFen, c.ReadRows, c.ReadFen)
	}
}

// ParseReport is what a parser says about a file besides its rows.
type ParseReport struct {
	Format    string      `json:"format"`
	Rows      int64       `json:"rows"`
	Malformed []LineError `json:"malformed,omitempty"`
	Control   Control     `json:"control"`
}

// MaxMalformedListed bounds the malformed lines a report lists (the count stays exact).
const MaxMalformedListed = 1000

func (r *ParseReport) malformed(line int64, reason string) {
	if len(r.Malformed) < MaxMalformedListed {
		r.Malformed = append(r.Malformed, LineError{Line: line, Reason: reason})
	}
}

// Emitter receives rows from a parser.
type Emitter interface{ Emit(*Row) }

// EmitFunc adapts a function to Emitter.
type EmitFunc func(*Row)

func (f EmitFunc) Emit(r *Row) { f(r) }
