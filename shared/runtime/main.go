package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	handler "github.com/openfaas/templates-sdk/go-http"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/eventstream"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/problem"
)

// Builder makes a function's router from its warm dependencies. It runs once per instance.
type Builder func(d *platform.Deps) (*Router, error)

// Main runs function name until SIGTERM and exits non-zero when it cannot start.
func Main(name string, needs platform.Needs, build Builder) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Run(ctx, name, os.Environ(), needs, build, nil); err != nil {
		fmt.Fprintf(os.Stderr, `{"level":"ERROR","function":%q,"msg":"cannot start","error":%q}`+"\n", name, err.Error())
		os.Exit(1)
	}
}

// Run is Main without the process around it: it serves until ctx ends, then drains.
// When started is non-nil it receives the listening address once the server accepts.
func Run(ctx context.Context, name string, environ []string, needs platform.Needs, build Builder, started chan<- string) error {
	cfg, cerr := LoadConfig(name, environ)
	pcfg, perr := platform.LoadConfig(name, environ)
	if err := errors.Join(cerr, perr); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logOut := newLogWriter(os.Stderr, 100*time.Millisecond)
	defer logOut.Close()
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel})).With("function", name)
	// GB/T 39786: the national algorithms are checked before anything is served.
	if err := gm.SelfTest(); err != nil {
		return fmt.Errorf("SM2/SM3/SM4 self-test failed; refusing to start: %w", err)
	}

	deps, err := platform.Open(ctx, name, pcfg, needs, cfg.Secrets, log)
	if err != nil {
		return err
	}
	defer deps.Close()
	deps.Env = envconf.New(environ)
	router, err := build(deps)
	if err != nil {
		return fmt.Errorf("build handler: %w", err)
	}
	router.Get("/health", healthRoute(deps, router))

	if cfg.PprofAddr != "" {
		servePprof(cfg.PprofAddr, log)
	}
	srv := NewServer(cfg, router, log, deps.Outage).WithAccessLog(logOut)
	l, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	// Background work of the instance: the outbox relay and the audit sealer.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	if deps.Postgres != nil && deps.Sink != nil {
		relay := &outbox.Relay{Pool: deps.Postgres, Producer: name, Log: log, Poll: pcfg.OutboxPoll, Deliver: sinkDelivery(deps.Sink)}
		if pub, ok := deps.Sink.(*eventstream.Publisher); ok {
			// JetStream: a claimed batch is published at once and its acks awaited together.
			relay.DeliverAll, relay.Batch = eventstream.RelayDelivery(pub), 256
		}
		background.Go(func() { relay.Run(bgCtx) })
	}
	if deps.Audit != nil {
		background.Go(func() { deps.Audit.RunSealer(bgCtx, deps.Postgres, log) })
	}
	background.Go(func() { srv.WatchDependencies(bgCtx, deps.Check, cfg.ReadinessInterval) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	log.Info("listening", "addr", l.Addr().String(), "exec_timeout", cfg.ExecTimeout.String(),
		"max_inflight", cfg.MaxInflight, "consumes", router.Consumes(), "outbox_relay", deps.Sink != nil)
	if started != nil {
		started <- l.Addr().String()
	}
	select {
	case err := <-serveErr:
		stopBackground()
		background.Wait()
		return err
	case <-ctx.Done():
	}
	err = srv.Shutdown(context.Background())
	// The relay and the sealer stop after the server: events committed by the last requests
	// still go out on the next start (or by another replica) if they are not sent now, and
	// the sealer seals once more on its way out.
	stopBackground()
	background.Wait()
	log.Info("stopped")
	return err
}

// sinkDelivery sends outbox messages to the event sink (JetStream or HTTP); the row is
// marked sent only after the sink acknowledged. An HTTP 4xx other than 408/429 means the
// sink will never take the event: dead-letter it rather than retry for hours.
func sinkDelivery(sink platform.EventSink) func(context.Context, outbox.Message) error {
	return func(ctx context.Context, m outbox.Message) error {
		err := sink.Send(ctx, m.Event)
		var ve *events.ValidationError
		if errors.As(err, &ve) {
			return outbox.Permanent(err) // no sink will ever take it
		}
		var se *events.SendError
		if errors.As(err, &se) && se.StatusCode >= 400 && se.StatusCode < 500 &&
			se.StatusCode != http.StatusRequestTimeout && se.StatusCode != http.StatusTooManyRequests {
			return outbox.Permanent(err)
		}
		return err
	}
}

// healthRoute is the function's own health route: it reaches every dependency, so an
// operator (or a test) sees an outage as a 503 problem with Retry-After.
func healthRoute(d *platform.Deps, r *Router) HandlerFunc {
	return func(req handler.Request) (handler.Response, error) {
		if err := d.Check(req.Context()); err != nil {
			if p, ok := problem.As(err); ok {
				return handler.Response{}, p
			}
			return handler.Response{}, d.Unavailable("a dependency", err)
		}
		return JSON(http.StatusOK, map[string]any{
			"function": d.Name, "status": "ok", "consumes": r.Consumes(), "scheduled": r.schedule != nil,
		})
	}
}
