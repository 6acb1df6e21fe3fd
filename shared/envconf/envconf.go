// Package envconf turns an environment (os.Environ's form) into typed settings.
//
// Configuration is a pure function of the environment: callers pass the []string, so
// tests build any configuration without touching the process environment. Parse errors
// are collected, so a misconfigured function reports every bad variable at once.
package envconf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env is a parsed environment that records errors as values are read.
type Env struct {
	vars map[string]string
	errs []error
}

// New parses "KEY=value" entries; later entries win, as in a process environment.
func New(environ []string) *Env {
	e := &Env{vars: make(map[string]string, len(environ))}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e.vars[k] = v
		}
	}
	return e
}

// Lookup returns the raw value and whether it is set and non-empty.
func (e *Env) Lookup(key string) (string, bool) {
	v, ok := e.vars[key]
	return v, ok && v != ""
}

// String returns the value or def.
func (e *Env) String(key, def string) string {
	if v, ok := e.Lookup(key); ok {
		return v
	}
	return def
}

// Duration accepts a Go duration ("90s", "1m30s") or whole seconds ("90"), like
// of-watchdog does, so the same stack.yml values mean the same thing to both.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	d, err := ParseDuration(v)
	if err != nil {
		e.fail(key, v, err.Error())
		return def
	}
	return d
}

// ParseDuration parses a watchdog duration: "10s", "1m30s" or plain seconds "90".
func ParseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, errors.New("must not be negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a non-negative duration such as 10s or a number of seconds")
	}
	return d, nil
}

// Int returns an integer within [min, max].
func (e *Env) Int(key string, def, min, max int) int {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.fail(key, v, fmt.Sprintf("want an integer from %d to %d", min, max))
		return def
	}
	return n
}

// Bool accepts true/false/1/0.
func (e *Env) Bool(key string, def bool) bool {
	v, ok := e.Lookup(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(key, v, "want true or false")
		return def
	}
	return b
}

// Fail records a validation error found by the caller.
func (e *Env) Fail(key, reason string) { e.errs = append(e.errs, fmt.Errorf("%s: %s", key, reason)) }

func (e *Env) fail(key, value, reason string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: %s", key, value, reason))
}

// Err returns every problem met so far, joined, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }
