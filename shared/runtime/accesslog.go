package runtime

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// accessLog writes the one JSON line of a successful request without slog's generic
// encoder: on the poll path the generic encoder cost more than the Redis round trip
// (make bench). Every value here has a constrained alphabet (function and route names are
// ours, request ids are validated, methods are HTTP tokens), so nothing needs escaping.
// Failures keep going through slog with their error text.
type accessLog struct {
	out      io.Writer
	function string
	pool     sync.Pool
}

func newAccessLog(out io.Writer, function string) *accessLog {
	return &accessLog{out: out, function: function, pool: sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}}
}

func (a *accessLog) write(at time.Time, rid, method, route string, status int, took time.Duration) {
	bp := a.pool.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","function":"`...)
	b = append(b, a.function...)
	b = append(b, `","request_id":"`...)
	b = append(b, rid...)
	b = append(b, `","method":"`...)
	b = append(b, method...)
	b = append(b, `","route":"`...)
	b = append(b, route...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(took.Microseconds())/1000, 'f', -1, 64)
	b = append(b, "}\n"...)
	_, _ = a.out.Write(b)
	*bp = b
	a.pool.Put(bp)
}
