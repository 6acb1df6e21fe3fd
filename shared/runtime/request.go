package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"sync/atomic"

	handler "github.com/openfaas/templates-sdk/go-http"
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
var requestIDShape = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

func requestIDFrom(given ...string) string {
	for _, g := range given {
		if requestIDShape.MatchString(g) {
			return g
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
// It is atomic because a handler abandoned at exec_timeout may still set it.
type routeLabel struct{ name atomic.Pointer[string] }

func withRouteLabel(ctx context.Context) (context.Context, *routeLabel) {
	l := &routeLabel{}
	unmatched := "unmatched"
	l.name.Store(&unmatched)
	return context.WithValue(ctx, routeKey, l), l
}

func (l *routeLabel) String() string { return *l.name.Load() }

func setRouteLabel(ctx context.Context, name string) {
	if l, ok := ctx.Value(routeKey).(*routeLabel); ok {
		l.name.Store(&name)
	}
}
