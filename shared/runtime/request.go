package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync/atomic"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/problem"
)

// The templates-sdk Request has no URL path, so the adapter passes it in this header
// (always overwritten: a caller cannot set it).
const pathHeader = "X-Function-Path"

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// Path returns the request path below the function's route ("/" for the root).
func Path(req handler.Request) string {
	if p := req.Header.Get(pathHeader); p != "" {
		return p
	}
	return "/"
}

// RequestID returns the id of the current request.
func RequestID(req handler.Request) string { return req.Header.Get(RequestIDHeader) }

// A caller-supplied id is accepted only in a conservative shape, so logs cannot be forged.
func validRequestID(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Generated ids are a random per-process prefix and a counter: unique across instances
// and cheap on the hot path (they correlate logs; they are not secrets).
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestIDFrom(given ...string) string {
	for _, g := range given {
		if g != "" && validRequestID(g) {
			return g
		}
	}
	var b [16]byte
	copy(b[:], idPrefix[:16])
	return string(strconv.AppendUint(append(b[:16:16], '-'), idCounter.Add(1), 36))
}

type ctxKey int

const (
	paramsKey ctxKey = iota
	routeKey
)

// Param returns path parameter name of the matched route ("/cards/{id}" → Param(req, "id")).
func Param(req handler.Request, name string) string {
	if m, ok := req.Context().Value(paramsKey).(map[string]string); ok {
		return m[name]
	}
	return ""
}

// routeLabel is filled by the router with the matched pattern so metrics and logs use the
// pattern, never the raw path (bounded cardinality, and paths may carry identifiers).
// The handler runs on the request's goroutine, so a plain field suffices.
type routeLabel struct{ name string }

func withRouteLabel(ctx context.Context) (context.Context, *routeLabel) {
	l := &routeLabel{name: "unmatched"}
	return context.WithValue(ctx, routeKey, l), l
}

func (l *routeLabel) String() string { return l.name }

func setRouteLabel(ctx context.Context, name string) {
	if l, ok := ctx.Value(routeKey).(*routeLabel); ok {
		l.name = name
	}
}

// DecodeJSON reads a JSON object body strictly: unknown members are refused (a typo in a
// field name is not silently ignored), and so is data after the object. An empty body is
// an empty object; a route that needs a body checks for one first.
func DecodeJSON(req handler.Request, v any) error {
	if len(bytes.TrimSpace(req.Body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(req.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Invalid("the body is not the expected JSON object: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.Invalid("the body has data after the JSON object")
	}
	return nil
}
