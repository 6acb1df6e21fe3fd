// Command gateway makes one machine behave like the cluster, for development and tests:
// it starts every function in stack.yml as its own process (the same binary that goes
// into its image), routes /function/<name> and /async-function/<name> like the OpenFaaS
// gateway, fires the cron-connector schedules from stack.yml annotations, and carries
// events as production does on OpenFaaS: functions' outbox relays publish to NATS
// JetStream (a nats-server embedded here unless -nats names one) and the event connector
// (shared/eventstream, run in this process) delivers every route of events/ through
// /function/<name>. Production uses OpenFaaS or Knative instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sscard/platform/infra/stack"
	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/secrets"
)

// Options are the gateway's settings (flags; see -h).
type Options struct {
	Listen     string
	StackFile  string
	BinDir     string
	LogDir     string
	BasePort   int
	Drain      time.Duration
	UpstreamTO time.Duration
	Functions  []string // empty = all
	NoCron     bool
	// NATS is the JetStream server list; empty runs nats-server in this process with its
	// store in NATSStore (default: "nats" next to the log directory).
	NATS                   string
	NATSStore              string
	ConnectorMinBackoff    time.Duration
	ConnectorMaxDeliveries int
}

func main() {
	var o Options
	var only string
	flag.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address of the gateway")
	flag.StringVar(&o.StackFile, "stack", "stack.yml", "OpenFaaS stack file")
	flag.StringVar(&o.BinDir, "bin", ".state/run/bin", "directory with one binary per function")
	flag.StringVar(&o.LogDir, "logs", ".state/run/logs", "directory for function logs")
	flag.IntVar(&o.BasePort, "base-port", 8101, "first port for function processes (one each, in name order); 0: a free port at every start")
	flag.DurationVar(&o.Drain, "drain", time.Second, "healthcheck_interval given to functions (drain wait on stop)")
	flag.DurationVar(&o.UpstreamTO, "upstream-timeout", stack.GatewayUpstreamTimeout, "upstream timeout (must exceed every exec_timeout)")
	flag.StringVar(&only, "only", "", "comma-separated functions to start (default all)")
	flag.BoolVar(&o.NoCron, "no-cron", false, "do not fire schedules")
	flag.StringVar(&o.NATS, "nats", "", "NATS JetStream URL(s); empty: run nats-server in this process")
	flag.StringVar(&o.NATSStore, "nats-store", "", "JetStream store directory of the embedded server (default: nats next to -logs)")
	flag.DurationVar(&o.ConnectorMinBackoff, "connector-min-backoff", 500*time.Millisecond, "event connector's first retry delay")
	flag.IntVar(&o.ConnectorMaxDeliveries, "connector-max-deliveries", 10, "deliveries before an event is dead-lettered")
	flag.Parse()
	o.Functions = splitList(only)

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "gateway")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Run(ctx, o, os.Environ(), log, nil); err != nil {
		log.Error("gateway failed", "error", err.Error())
		os.Exit(1)
	}
}

// Run starts everything and blocks until ctx ends; ready receives the listen address.
func Run(ctx context.Context, o Options, environ []string, log *slog.Logger, ready chan<- string) error {
	stackYAML, err := os.ReadFile(filepath.Clean(o.StackFile))
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	// The functions' database is migrated before they start, as a deploy job would.
	pcfg, err := platform.LoadConfig("gateway", environ)
	if err != nil {
		return err
	}
	sec := secrets.Reader{Dir: envconf.New(environ).String("secret_mount_path", secrets.DefaultMountPath)}
	if err := migrate(ctx, pcfg.PostgresDSN, sec); err != nil {
		return err
	}
	natsURL := o.NATS
	if natsURL == "" {
		natsURL = envconf.New(environ).String("nats_url", "")
	}
	if natsURL == "" {
		if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
			return err
		}
		ns, err := startNATS(natsDir(o), filepath.Join(o.LogDir, "nats.log"))
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		natsURL = ns.ClientURL()
	}

	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	defer l.Close() // on early returns; Serve owns it afterwards
	self := "http://" + l.Addr().String()
	// Functions publish their events to this JetStream server.
	file, err := stack.Parse(stackYAML, lookup(environ, natsURL))
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}

	sup := newSupervisor(file, o, environ, log)
	if err := sup.startAll(ctx); err != nil {
		sup.stopAll()
		return err
	}
	defer sup.stopAll()

	connCtx, stopConnector := context.WithCancel(ctx)
	connDone := make(chan struct{})
	go func() {
		defer close(connDone)
		if err := runConnector(connCtx, natsURL, sup, self, o, log); err != nil {
			log.Error("event connector stopped", "error", err.Error())
		}
	}()
	// Stopped before the functions (deferred later, runs earlier): no delivery to a
	// process that is going away.
	defer func() { stopConnector(); <-connDone }()
	async := newAsyncQueue(sup, log, o.UpstreamTO)
	defer async.close()

	var crn *scheduler
	if !o.NoCron {
		crn = newScheduler(file, self, log)
		crn.start()
		defer crn.stop()
	}

	srv := &http.Server{Handler: routes(sup, async, crn, o.UpstreamTO, log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("gateway ready", "url", self, "functions", sup.names(), "nats_url", natsURL)
	if ready != nil {
		ready <- l.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// lookup gives stack.yml's envsubst the process environment, with local defaults for the
// variables stack.yml leaves to the platform: where the services and JetStream are.
func lookup(environ []string, natsURL string) func(string) string {
	e := envconf.New(environ)
	local := map[string]string{
		"POSTGRES_DSN": e.String("postgres_dsn", ""),
		"REDIS_ADDR":   e.String("redis_addr", ""),
		"S3_ENDPOINT":  e.String("s3_endpoint", ""),
		"EVENT_SINK":   natsURL,
		"NATS_URL":     natsURL,
	}
	return func(k string) string {
		if v, ok := e.Lookup(k); ok {
			return v
		}
		return local[k]
	}
}

func migrate(ctx context.Context, dsn string, sec secrets.Reader) error {
	pw, err := sec.Optional("postgres-password")
	if err != nil {
		return err
	}
	_, err = db.Migrate(ctx, dsn, pw)
	return err
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}
