package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/eventstream"
)

// startNATS runs nats-server (the pinned module, in this process) with JetStream on file
// storage in dir, listening on a free loopback port, logging to logFile. It stands in for
// the JetStream cluster production runs (docs/events-transport.md); a test that needs
// to kill the server runs a separate one and passes -nats.
func startNATS(dir, logFile string) (*server.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "gateway-local", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		JetStream: true, StoreDir: dir, LogFile: logFile, MaxPayload: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats-server did not start; see %s", logFile)
	}
	return ns, nil
}

// runConnector ensures the streams and delivers every route whose consumer runs here
// through this gateway's /function/<name>, as the connector deployment does through the
// OpenFaaS gateway.
func runConnector(ctx context.Context, natsURL string, sup *supervisor, self string, o Options, log *slog.Logger) error {
	nc, js, err := eventstream.Connect(eventstream.Config{URL: natsURL}, "gateway-connector")
	if err != nil {
		return err
	}
	defer nc.Close()
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = eventstream.EnsureStreams(sctx, js, eventstream.DefaultTopology())
		cancel()
		if err == nil {
			break
		}
		log.Warn("cannot create the event streams yet", "error", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	var routes []events.Route
	for _, r := range events.Routes() {
		if _, ok := sup.get(r.Consumer); ok {
			routes = append(routes, r)
		}
	}
	c := &eventstream.Connector{JS: js, Routes: routes, Log: log.With("component", "connector"),
		Target:     func(fn string) string { return self + "/function/" + fn },
		MinBackoff: o.ConnectorMinBackoff, MaxBackoff: 30 * time.Second, MaxDeliveries: o.ConnectorMaxDeliveries}
	return c.Run(ctx)
}

func natsDir(o Options) string {
	if o.NATSStore != "" {
		return o.NATSStore
	}
	return filepath.Join(filepath.Dir(filepath.Clean(o.LogDir)), "nats")
}
