package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// The plain format is the platform's own row layout, one row a line, comma-separated:
//
//	key,amount_fen,status,time[,merchant[,kind]]
//
// amount in integer fen (positive; the direction is kind), status one of SUCCESS,
// REFUND, CLOSED, PROCESSING, FAILED (or the lower-case names of Status), time
// "yyyy-mm-dd hh:mm:ss" China time or unix seconds, kind pay (default) or refund. An
// optional first line naming the columns is skipped. The ledger streams out of Postgres in
// it (COPY … TO STDOUT), and the benchmark's files use it.

// PlainChunk is the size of the pieces a plain file is cut into for parallel parsing.
const PlainChunk = 8 << 20

// FeedPlain parses a plain file with workers goroutines (default GOMAXPROCS), each
// emitting to an Emitter of its own from newEmitter (the caller closes them). Chunks are
// cut at line ends, so each worker parses whole lines; line numbers stay exact.
func FeedPlain(r io.Reader, workers int, newEmitter func() Emitter) (ParseReport, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	rep := ParseReport{Format: "plain"}
	feeders := make([]Emitter, workers)
	for i := range feeders {
		feeders[i] = newEmitter()
	}
	type result struct {
		rows int64
		bad  []LineError
	}
	results := make([]result, workers)
	buf := make([]byte, PlainChunk)
	next := make([]byte, PlainChunk)
	carry := 0
	var line int64 = 1
	first := true
	for {
		n, err := io.ReadFull(r, buf[carry:])
		end := carry + n
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return rep, err
		}
		if end == 0 {
			break
		}
		cut := end
		if !eof {
			cut = bytes.LastIndexByte(buf[:end], '\n') + 1
			if cut == 0 {
				return rep, fmt.Errorf("line %d is longer than %d bytes", line, PlainChunk)
			}
		}
		data := buf[:cut]
		if first {
			first = false
			if nl := bytes.IndexByte(data, '\n'); isPlainHeader(data, nl) {
				data = data[nl+1:]
				line++
			}
		}
		// Pieces at line ends, each with its first line number.
		pieces := make([][]byte, 0, workers)
		starts := make([]int64, 0, workers)
		rest, at := data, line
		for w := 0; w < workers && len(rest) > 0; w++ {
			k := len(rest)
			if w < workers-1 {
				k = len(rest) / (workers - w)
				if i := bytes.IndexByte(rest[k:], '\n'); i >= 0 {
					k += i + 1
				} else {
					k = len(rest)
				}
			}
			pieces = append(pieces, rest[:k])
			starts = append(starts, at)
			at += int64(bytes.Count(rest[:k], []byte{'\n'}))
			rest = rest[k:]
		}
		var wg sync.WaitGroup
		for w := range pieces {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rows, bad := parsePlainPiece(pieces[w], starts[w], feeders[w])
				results[w].rows += rows
				results[w].bad = append(results[w].bad, bad...)
			}()
		}
		wg.Wait()
		line = at
		carry = copy(next, buf[cut:end])
		buf, next = next, buf
		if eof {
			if carry > 0 {
				continue
			}
			break
		}
	}
	for _, res := range results {
		rep.Rows += res.rows
		for _, b := range res.bad {
			rep.malformed(b.Line, b.Reason)
		}
	}
	rep.Control.ReadRows = rep.Rows
	rep.Control.check()
	return rep, nil
}

func isPlainHeader(data []byte, nl int) bool {
	if nl < 0 {
		nl = len(data)
	}
	h := data[:nl]
	return bytes.HasPrefix(h, []byte("txn_id,")) || bytes.HasPrefix(h, []byte("key,"))
}

func parsePlainPiece(data []byte, line int64, f Emitter) (rows int64, bad []LineError) {
	var r Row
	var fields [6][]byte
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		var l []byte
		if nl < 0 {
			l, data = data, nil
		} else {
			l, data = data[:nl], data[nl+1:]
		}
		if len(l) > 0 && l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
		if len(l) == 0 {
			line++
			continue
		}
		n := 0
		for n < len(fields) {
			i := bytes.IndexByte(l, ',')
			if i < 0 {
				fields[n] = l
				n++
				l = nil
				break
			}
			fields[n] = l[:i]
			l = l[i+1:]
			n++
		}
		if reason := parsePlainFields(fields[:n], l != nil, &r); reason != "" {
			bad = append(bad, LineError{Line: line, Reason: reason})
		} else {
			r.Line = line
			f.Emit(&r)
			rows++
		}
		line++
	}
	return rows, bad
}

func parsePlainFields(fs [][]byte, extra bool, r *Row) string {
	if len(fs) < 4 || extra {
		return fmt.Sprintf("want 4 to 6 comma-separated fields, got %d", len(fs)+btoi(extra))
	}
	if len(fs[0]) == 0 {
		return "empty key"
	}
	r.Key = fs[0]
	amt, err := parseInt(fs[1])
	if err != nil || amt < 0 {
		return "amount_fen: want a non-negative integer"
	}
	r.AmountFen = amt
	st, ok := plainStatus(fs[2])
	if !ok {
		return "status: unknown " + quoteShort(fs[2])
	}
	r.Status = st
	if len(fs[3]) == 19 {
		r.Time, err = ParseChinaTime(fs[3])
	} else {
		r.Time, err = parseInt(fs[3])
	}
	if err != nil {
		return "time: want yyyy-mm-dd hh:mm:ss or unix seconds"
	}
	r.Merchant, r.Kind = nil, KindPay
	if len(fs) > 4 {
		r.Merchant = fs[4]
	}
	if len(fs) > 5 {
		switch string(fs[5]) {
		case "pay", "":
		case "refund":
			r.Kind = KindRefund
		default:
			return "kind: want pay or refund"
		}
	}
	return ""
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func plainStatus(b []byte) (Status, bool) {
	switch string(b) {
	case "SUCCESS", "success":
		return StatusSuccess, true
	case "REFUND", "refunded":
		return StatusRefunded, true
	case "CLOSED", "closed":
		return StatusClosed, true
	case "PROCESSING", "processing":
		return StatusProcessing, true
	case "FAILED", "failed":
		return StatusFailed, true
	}
	return ParseStatus(string(b))
}

// quoteShort quotes at most 24 bytes of a field for an error message (never a whole line:
// statement lines may carry names).
func quoteShort(b []byte) string {
	if len(b) > 24 {
		b = b[:24]
	}
	return fmt.Sprintf("%q", b)
}
