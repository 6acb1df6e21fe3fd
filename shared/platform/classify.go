package platform

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/problem"
)

// Outage turns err into a 503 problem when it means a dependency could not be reached or
// refused service; it returns nil for every other error (bugs, constraint violations),
// which the caller must handle itself. Callers that know which dependency failed should
// use Unavailable instead; Outage guesses from the error and the configured addresses.
func (d *Deps) Outage(err error) *problem.Problem {
	if err == nil {
		return nil
	}
	if p, ok := problem.As(err); ok && p.Status == 503 {
		return p
	}
	if dep, ok := d.dependencyOf(err); ok {
		return d.outage(dep, err)
	}
	return nil
}

// Unavailable reports dependency dep as down, with this instance's Retry-After.
func (d *Deps) Unavailable(dep string, err error) *problem.Problem { return d.outage(dep, err) }

func (d *Deps) outage(dep string, err error) *problem.Problem {
	return problem.Unavailable(dep, d.Config.RetryAfter, errors.Join(ErrUnavailable, err))
}

func (d *Deps) dependencyOf(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 connection exception, 57P0x shutdown/cannot connect now, 53300 too many connections.
		c := pgErr.Code
		if strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300" {
			return "postgres", true
		}
		return "", false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.Timeout(err) && isNetwork(err) {
		return "postgres", true
	}
	if errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) || isRedisBusy(err) {
		return "redis", true
	}
	if !isNetwork(err) {
		return "", false
	}
	// A bare network error: name the dependency by the address it was talking to.
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		addr := op.Addr.String()
		switch {
		case d.Redis != nil && sameHostPort(addr, d.Config.RedisAddr):
			return "redis", true
		case d.S3 != nil && portOf(addr) == urlPort(d.Config.S3Endpoint):
			return "object-store", true
		case d.Postgres != nil:
			return "postgres", true
		}
	}
	return "a dependency", true
}

func isNetwork(err error) bool {
	var ne net.Error
	var op *net.OpError
	return errors.As(err, &op) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// Redis answers LOADING while it reads its dump after a restart, and READONLY on a replica.
func isRedisBusy(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "READONLY") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	return false
}

func sameHostPort(a, b string) bool { return portOf(a) != "" && portOf(a) == portOf(b) }

func urlPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func portOf(hostport string) string {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	return port
}
