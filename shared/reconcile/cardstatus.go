package reconcile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"

	"github.com/sscard/platform/shared/card"
)

// Bank card-status file for 银社对账 (no public specification: ours, documented in
// docs/reconcile.md). ASCII, '|'-separated, one card a line:
//
//	H|<bank code>|<yyyymmdd>
//	D|<card_no>|<status code (AAZ502, the province's codes as configured)>|<yyyy-mm-dd hh:mm:ss>
//	…
//	T|<number of D lines>
//
// The key is the card number; the state is the status the code maps to (card.Codes).
// Matched against the platform's own cards: a card the bank lacks is short, a card the
// centre lacks is long, and differing states are a status mismatch.

var cardHead = regexp.MustCompile(`^H\|([A-Za-z0-9]{1,16})\|(\d{8})$`)

// ParseCardStatus reads a bank card-status file and emits its rows.
func ParseCardStatus(r io.Reader, codes card.Codes, out Emitter) (ParseReport, error) {
	rep := ParseReport{Format: "card-status-v1"}
	sc := bufio.NewScanner(r)
	var line int64
	var bank []byte
	ended := false
	for sc.Scan() {
		line++
		l := bytes.TrimRight(sc.Bytes(), "\r")
		if len(l) == 0 {
			continue
		}
		if line == 1 {
			m := cardHead.FindSubmatch(l)
			if m == nil {
				return rep, fmt.Errorf("line 1: want H|<bank code>|<yyyymmdd>")
			}
			bank = append([]byte(nil), m[1]...)
			continue
		}
		fs := bytes.Split(l, []byte("|"))
		switch {
		case ended:
			rep.malformed(line, "a line after the trailer")
		case string(fs[0]) == "T" && len(fs) == 2:
			n, err := parseInt(fs[1])
			if err != nil {
				rep.malformed(line, "trailer count unreadable")
				continue
			}
			rep.Control.Declared, rep.Control.Count, ended = true, n, true
		case string(fs[0]) == "D" && len(fs) == 4:
			st, ok := codes.Status(string(fs[2]))
			if !ok {
				rep.malformed(line, "status code "+quoteShort(fs[2])+" is not a configured card status code")
				continue
			}
			s, _ := ParseStatus(string(st))
			t := timeField(fs[3])
			if len(fs[1]) == 0 || t == 0 {
				rep.malformed(line, "card number or time unreadable")
				continue
			}
			rep.Rows++
			out.Emit(&Row{Line: line, Key: fs[1], Merchant: bank, Status: s, Time: t})
		default:
			rep.malformed(line, "want D|card_no|status code|time or T|count")
		}
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	rep.Control.ReadRows = rep.Rows
	rep.Control.check()
	if !ended {
		rep.Control.OK, rep.Control.Detail = false, "no trailer line: the file may be cut short"
	}
	return rep, nil
}
