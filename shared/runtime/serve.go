package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/shared/problem"
)

// ErrorMapper turns a handler error that is not a *problem.Problem into one (e.g. a
// dependency outage into a 503), or returns nil to fall back to a 500.
type ErrorMapper func(error) *problem.Problem

// Server is one function instance's HTTP server.
type Server struct {
	cfg      Config
	fn       handler.FunctionHandler
	log      *slog.Logger
	mapError ErrorMapper
	ready    func(context.Context) error
	metrics  *metrics
	access   *accessLog // nil: successful requests go through log like the rest
	inflight atomic.Int64
	draining atomic.Bool
	depsDown atomic.Pointer[string] // why the dependencies are not reachable; nil: they are
	srv      *http.Server
}

// NewServer wires fn into an HTTP server. ready, when set, backs the function's deep
// health route; the watchdog routes /_/health and /_/ready stay cheap and local.
func NewServer(cfg Config, fn handler.FunctionHandler, log *slog.Logger, mapError ErrorMapper) *Server {
	s := &Server{cfg: cfg, fn: fn, log: log, mapError: mapError, metrics: newMetrics(cfg.Name)}
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", s.health)
	mux.HandleFunc("/_/ready", s.readiness)
	mux.Handle("/_/metrics", s.metrics.handler())
	mux.HandleFunc("/", s.invoke)
	s.srv = &http.Server{
		Handler:           mux,
		ReadTimeout:       cfg.ReadTimeout,
		ReadHeaderTimeout: cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// WithAccessLog writes the lines of successful requests to out in the same JSON shape as
// the logger, by a faster path.
func (s *Server) WithAccessLog(out io.Writer) *Server {
	s.access = newAccessLog(out, s.cfg.Name)
	return s
}

// WatchDependencies checks the dependencies every interval until ctx ends; while the last
// check failed, /_/ready answers 503, so the platform sends this instance no traffic (a
// pod whose Postgres or Redis is down is not Ready). /_/health stays up: restarting
// the process would not bring a database back.
func (s *Server) WatchDependencies(ctx context.Context, check func(context.Context) error, interval time.Duration) {
	for {
		if err := check(ctx); err != nil && ctx.Err() == nil {
			why := err.Error()
			if s.depsDown.Swap(&why) == nil {
				s.log.Warn("not ready: a dependency is down", "error", why)
			}
		} else if s.depsDown.Swap(nil) != nil {
			s.log.Info("ready again: dependencies reachable")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Handler exposes the server's routes (tests, benchmarks).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Shutdown follows the watchdog's SIGTERM sequence: report unhealthy at once, keep
// serving for healthcheck_interval so load balancers notice, then drain in-flight
// requests within write_timeout.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.log.Info("draining", "wait", s.cfg.HealthcheckInterval.String(), "inflight", s.inflight.Load())
	select {
	case <-time.After(s.cfg.HealthcheckInterval):
	case <-ctx.Done():
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
}

// readiness mirrors of-watchdog's /_/ready: 503 while draining, 429 at max_inflight; and
// 503 while a dependency is down (WatchDependencies).
func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case s.cfg.MaxInflight > 0 && s.inflight.Load() >= int64(s.cfg.MaxInflight):
		http.Error(w, "at max_inflight", http.StatusTooManyRequests)
	case s.depsDown.Load() != nil:
		http.Error(w, "dependency down: "+*s.depsDown.Load(), http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK")
	}
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := requestIDFrom(r.Header.Get(RequestIDHeader), r.Header.Get("X-Call-Id"))
	ctx, label := withRouteLabel(r.Context())
	n := s.inflight.Add(1)
	s.metrics.inflight.Inc()
	defer func() { s.inflight.Add(-1); s.metrics.inflight.Dec() }()

	var res handler.Response
	var err error
	if s.cfg.MaxInflight > 0 && n > int64(s.cfg.MaxInflight) {
		err = problem.TooMany("this instance is at max_inflight; retry shortly", time.Second)
	} else {
		res, err = s.call(ctx, r, rid)
	}

	status := s.write(w, res, err, rid, r.URL.Path)
	took := time.Since(start)
	route := label.String()
	s.metrics.observe(route, r.Method, status, took)
	level, msg := slog.LevelInfo, "request"
	if status < 400 && s.access != nil {
		if s.log.Enabled(ctx, level) {
			s.access.write(start.Add(took), rid, r.Method, route, status, took)
		}
		return
	}
	switch {
	case status >= 500:
		level, msg = slog.LevelError, "request failed"
	case status >= 400:
		msg = "request rejected"
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	// Never the query string or body: they may carry ID numbers or phone numbers.
	attrs := []slog.Attr{slog.String("request_id", rid), slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("duration_ms", float64(took.Microseconds())/1000)}
	if err != nil {
		attrs = append(attrs, slog.String("error", errText(err)))
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

// call reads the body and runs the handler under exec_timeout; past it the caller gets
// 504, as with the watchdog.
func (s *Server) call(ctx context.Context, r *http.Request, rid string) (handler.Response, error) {
	var body []byte
	var err error
	switch {
	case r.ContentLength > 0 && r.ContentLength <= s.cfg.MaxBodyBytes:
		// A declared length is read into one buffer of that size (io.ReadAll would grow
		// one from 512 bytes, copying a photo upload seven times over).
		body = make([]byte, r.ContentLength)
		if _, err = io.ReadFull(r.Body, body); err != nil {
			err = fmt.Errorf("body: %w", err)
		}
	case r.ContentLength != 0: // -1 (unknown, chunked) or too long: read to the limit
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return handler.Response{}, problem.New(http.StatusRequestEntityTooLarge, "body-too-large",
				"Request body too large", fmt.Sprintf("the body exceeds %d bytes", s.cfg.MaxBodyBytes))
		}
		return handler.Response{}, problem.Invalid("the request body could not be read")
	}
	// The request's own header map is this request's alone: annotate it in place.
	h := r.Header
	h.Set(pathHeader, r.URL.Path)
	h.Set(RequestIDHeader, rid)
	req := handler.Request{Body: body, Header: h, QueryString: r.URL.RawQuery, Method: r.Method, Host: r.Host}

	if s.cfg.ExecTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ExecTimeout)
		defer cancel()
	}
	req.WithContext(ctx)
	res, err := s.safeHandle(req)
	// Handlers pass their context to every call (pgx, go-redis, HTTP clients), so they
	// return soon after the deadline; what they return then is replaced by the 504 the
	// watchdog would give. Running inline spares a goroutine and a channel per request.
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return handler.Response{}, problem.New(http.StatusGatewayTimeout, "exec-timeout", "Function timed out",
				"the invocation exceeded exec_timeout ("+s.cfg.ExecTimeout.String()+")")
		}
		return handler.Response{}, problem.New(499, "client-closed", "Client closed request", "")
	}
	return res, err
}

// safeHandle turns a handler panic into a 500 problem instead of a dead process.
func (s *Server) safeHandle(req handler.Request) (res handler.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = handler.Response{}, problem.Internal(fmt.Errorf("panic: %v", p))
		}
	}()
	return s.fn.Handle(req)
}

// write sends the response or the problem; it returns the status written.
func (s *Server) write(w http.ResponseWriter, res handler.Response, err error, rid, path string) int {
	if err != nil {
		p, ok := problem.As(err)
		if !ok && s.mapError != nil {
			p = s.mapError(err)
		}
		if p == nil {
			p = problem.Internal(err)
		}
		p.RequestID = rid
		p.Instance = path
		for k, v := range p.Headers() {
			w.Header()[k] = v
		}
		w.Header().Set(RequestIDHeader, rid)
		w.WriteHeader(p.Status)
		_, _ = w.Write(p.Body())
		return p.Status
	}
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.Header().Set(RequestIDHeader, rid)
	status := res.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if len(res.Body) > 0 && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", http.DetectContentType(res.Body))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(status)
	_, _ = w.Write(res.Body)
	return status
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	if p, ok := problem.As(err); ok {
		if c := p.Unwrap(); c != nil {
			return p.Title + ": " + c.Error()
		}
		return p.Title + ": " + p.Detail
	}
	return err.Error()
}
