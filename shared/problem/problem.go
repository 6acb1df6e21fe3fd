// Package problem renders errors as RFC 9457 "problem details" (application/problem+json).
//
// Every function answers client mistakes, conflicts and dependency outages with one of
// these, never with a bare status line: the caller learns what went wrong and, for
// invalid input, which field and why.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// ContentType is the media type of every problem body.
const ContentType = "application/problem+json"

// typeBase prefixes problem type URIs. A URN keeps the identifiers stable without
// promising a web page at some host.
const typeBase = "urn:sscard:problem:"

// InvalidParam names one rejected input field and the reason, as in RFC 9457 §3's example.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Problem is both an error (handlers return it) and the wire body.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Instance      string         `json:"instance,omitempty"`
	RequestID     string         `json:"requestId,omitempty"`
	InvalidParams []InvalidParam `json:"invalidParams,omitempty"`
	// Extra members specific to a problem type (e.g. "currentState" on a conflict).
	Extra map[string]any `json:"-"`
	// RetryAfter, when set, becomes the Retry-After header (503, 429).
	RetryAfter time.Duration `json:"-"`
	// cause is kept for logs only; it is never sent to the caller.
	cause error
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// Unwrap exposes the internal cause to errors.Is/As.
func (p *Problem) Unwrap() error { return p.cause }

// MarshalJSON flattens Extra into the top-level object, as RFC 9457 extension members are.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	base, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extra) == 0 {
		return base, err
	}
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extra {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// New builds a problem of the given status; kind becomes the type URI suffix.
func New(status int, kind, title, detail string) *Problem {
	return &Problem{Type: typeBase + kind, Title: title, Status: status, Detail: detail}
}

// With adds an extension member and returns p for chaining.
func (p *Problem) With(key string, value any) *Problem {
	if p.Extra == nil {
		p.Extra = map[string]any{}
	}
	p.Extra[key] = value
	return p
}

// Because records the internal cause (for logs, never for the body).
func (p *Problem) Because(err error) *Problem { p.cause = err; return p }

// Invalid is a 400 naming the rejected fields. Fields are sorted so bodies are stable.
func Invalid(detail string, params ...InvalidParam) *Problem {
	sort.SliceStable(params, func(i, j int) bool { return params[i].Name < params[j].Name })
	p := New(http.StatusBadRequest, "invalid-input", "Invalid input", detail)
	p.InvalidParams = params
	return p
}

// Field is shorthand for one InvalidParam.
func Field(name, reason string) InvalidParam { return InvalidParam{Name: name, Reason: reason} }

// NotFound is a 404 for an unknown route or resource.
func NotFound(detail string) *Problem {
	return New(http.StatusNotFound, "not-found", "Not found", detail)
}

// MethodNotAllowed is a 405; allow lists the methods the route accepts.
func MethodNotAllowed(allow []string) *Problem {
	return New(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		"this route accepts "+join(allow)).With("allow", allow)
}

// Conflict is a 409, e.g. an illegal state transition.
func Conflict(detail string) *Problem {
	return New(http.StatusConflict, "conflict", "Conflict", detail)
}

// TooMany is a 429 with Retry-After.
func TooMany(detail string, retryAfter time.Duration) *Problem {
	p := New(http.StatusTooManyRequests, "too-many-requests", "Too many requests", detail)
	p.RetryAfter = retryAfter
	return p
}

// Unavailable is a 503 for a dependency outage; the caller may retry after retryAfter.
// dependency names the part that failed ("postgres", "redis", "object-store"), which is
// operational information, not a secret.
func Unavailable(dependency string, retryAfter time.Duration, cause error) *Problem {
	p := New(http.StatusServiceUnavailable, "dependency-unavailable", "Service temporarily unavailable",
		dependency+" is not reachable; the request was not carried out and can be retried")
	p.RetryAfter = retryAfter
	p.cause = cause
	return p.With("dependency", dependency)
}

// Internal is a 500 that tells the caller nothing about internals; the cause goes to logs.
func Internal(cause error) *Problem {
	p := New(http.StatusInternalServerError, "internal", "Internal error",
		"the request failed unexpectedly; quote the request id when reporting it")
	p.cause = cause
	return p
}

// As returns err as a *Problem when it is (or wraps) one.
func As(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

// Headers returns the response headers of p.
func (p *Problem) Headers() http.Header {
	h := http.Header{}
	h.Set("Content-Type", ContentType)
	if p.RetryAfter > 0 {
		secs := int((p.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.Itoa(secs))
	}
	return h
}

// Body returns the JSON body of p.
func (p *Problem) Body() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// Extra members are ours; a marshal failure is a programming error. Keep a valid body.
		b, _ = json.Marshal(&Problem{Type: p.Type, Title: p.Title, Status: p.Status})
	}
	return b
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
