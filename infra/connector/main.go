// Command connector is the event connector of an OpenFaaS deployment: it keeps one durable
// JetStream consumer per route of the events catalog and posts each event in binary mode
// to the OpenFaaS gateway's /function/<name> (shared/eventstream). Run several replicas:
// they share the consumers. It also lists and replays dead letters:
//
//	connector                         deliver until SIGTERM (health on :8080/_/health)
//	connector dead-letters [consumer] list dead letters (JSON lines), oldest first
//	connector replay SEQ…             send those dead letters to their function again
//	connector replay -all [consumer]  replay every dead letter (of one consumer)
//	connector dead-letter-sink        receive what the Knative Broker gives up on (its
//	                                  deadLetterSink) into the same dead-letter stream
//
// Environment: nats_url [nats://nats.sscard:4222], nats_stream_replicas [1; 3 in
// production], gateway_url [http://gateway.openfaas:8080], delivery_timeout [30s],
// max_deliveries [10], min_backoff [1s], max_backoff [2m], workers per route [16],
// listen [:8080], secret_mount_path [/var/openfaas/secrets] (secrets nats-user,
// nats-password).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/eventstream"
	"github.com/sscard/platform/shared/secrets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	e := envconf.New(environ)
	sec := secrets.Reader{Dir: e.String("secret_mount_path", secrets.DefaultMountPath)}
	cfg, err := eventstream.LoadConfig(environ, "nats://nats.sscard:4222", sec)
	if err != nil {
		fmt.Fprintln(stderr, "connector:", err)
		return 2
	}
	nc, js, err := eventstream.Connect(cfg, "event-connector")
	if err != nil {
		fmt.Fprintln(stderr, "connector:", err)
		return 1
	}
	defer nc.Close()
	if len(args) > 0 && args[0] == "dead-letters" {
		consumer := ""
		if len(args) > 1 {
			consumer = args[1]
		}
		dls, err := eventstream.ListDeadLetters(ctx, js, consumer, 10000)
		if err != nil {
			fmt.Fprintln(stderr, "connector:", err)
			return 1
		}
		enc := json.NewEncoder(stdout)
		for _, d := range dls {
			_ = enc.Encode(d)
		}
		return 0
	}
	if len(args) > 0 && args[0] == "replay" {
		var seqs []uint64
		if len(args) > 1 && args[1] == "-all" {
			consumer := ""
			if len(args) > 2 {
				consumer = args[2]
			}
			dls, err := eventstream.ListDeadLetters(ctx, js, consumer, 10000)
			if err != nil {
				fmt.Fprintln(stderr, "connector:", err)
				return 1
			}
			for _, d := range dls {
				seqs = append(seqs, d.Seq)
			}
		} else {
			for _, a := range args[1:] {
				n, err := strconv.ParseUint(a, 10, 64)
				if err != nil {
					fmt.Fprintf(stderr, "connector: %q is not a dead-letter sequence number\n", a)
					return 2
				}
				seqs = append(seqs, n)
			}
		}
		for _, s := range seqs {
			if err := eventstream.Replay(ctx, js, s); err != nil {
				fmt.Fprintln(stderr, "connector:", err)
				return 1
			}
			fmt.Fprintf(stdout, "replayed %d\n", s)
		}
		return 0
	}
	if len(args) > 0 && args[0] == "dead-letter-sink" {
		return deadLetterSink(ctx, e, js, nc, stderr)
	}
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: connector [dead-letters [consumer] | replay SEQ… | replay -all [consumer] | dead-letter-sink]")
		return 2
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "connector")
	gateway := strings.TrimSuffix(e.String("gateway_url", "http://gateway.openfaas:8080"), "/")
	timeout := e.Duration("delivery_timeout", 30*time.Second)
	c := &eventstream.Connector{JS: js, Routes: events.Routes(), Log: log,
		Target:        func(fn string) string { return gateway + "/function/" + fn },
		Client:        &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		MaxDeliveries: e.Int("max_deliveries", 10, 1, 1000),
		MinBackoff:    e.Duration("min_backoff", time.Second), MaxBackoff: e.Duration("max_backoff", 2*time.Minute),
		Workers: e.Int("workers", 16, 1, 1024)}
	if err := e.Err(); err != nil {
		fmt.Fprintln(stderr, "connector:", err)
		return 2
	}
	top := eventstream.DefaultTopology()
	top.Replicas = cfg.Replicas
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := eventstream.EnsureStreams(sctx, js, top)
		cancel()
		if err == nil {
			break
		}
		log.Warn("cannot create the event streams yet", "error", err.Error())
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(2 * time.Second):
		}
	}
	// Health for the platform's probes: live while connected to NATS.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_/health", func(w http.ResponseWriter, r *http.Request) {
		if err := eventstream.Check(nc); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "OK")
	})
	srv := &http.Server{Addr: e.String("listen", ":8080"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()
	if err := c.Run(ctx); err != nil {
		log.Error("connector stopped", "error", err.Error())
		return 1
	}
	return 0
}

// deadLetterSink keeps each CloudEvent posted to it (binary or structured) in the
// dead-letter stream. Knative adds knativeerrordest (the subscriber's URL),
// knativeerrorcode and knativeerrordata (its answer) to what it dead-letters.
func deadLetterSink(ctx context.Context, e *envconf.Env, js jetstream.JetStream, nc *nats.Conn, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "dead-letter-sink")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_/health", func(w http.ResponseWriter, r *http.Request) {
		if err := eventstream.Check(nc); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "OK")
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		ev, err := events.FromHTTP(r.Context(), r.Header, body)
		if err != nil {
			// Kept anyway would need a valid event; refuse so the Broker logs it.
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ext := ev.Extensions()
		dest, _ := ext["knativeerrordest"].(string)
		code, _ := strconv.Atoi(fmt.Sprint(ext["knativeerrorcode"]))
		reason := fmt.Sprintf("knative gave up delivering to %s: HTTP %d %v", dest, code, ext["knativeerrordata"])
		consumer := "knative"
		if i := strings.Index(dest, "://"); i >= 0 {
			// http://<service>.<namespace>.svc.cluster.local → <service>
			consumer, _, _ = strings.Cut(dest[i+3:], ".")
		}
		if err := eventstream.KeepDeadLetter(r.Context(), js, consumer, reason, code, ev); err != nil {
			log.Warn("cannot keep dead letter", "error", err.Error())
			http.Error(w, "not kept", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Addr: e.String("listen", ":8080"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.ListenAndServe(); err != nil && ctx.Err() == nil {
		log.Error("dead-letter sink stopped", "error", err.Error())
		return 1
	}
	return 0
}
