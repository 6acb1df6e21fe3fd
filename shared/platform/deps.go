package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/eventstream"
	"github.com/sscard/platform/shared/secrets"
)

// Deps are the warm dependencies of one function instance. Fields for dependencies the
// function does not need are nil.
type Deps struct {
	Name     string
	Config   Config
	Postgres *pgxpool.Pool
	Redis    redis.UniversalClient
	S3       *s3.Client
	// Sink delivers CloudEvents from the outbox: a JetStream publisher when event_sink is
	// nats://…, an HTTP sender (K_SINK on Knative) when http(s)://…; nil when none is set.
	Sink EventSink
	// Audit is the instance's audit log (with Postgres): capability packages append to it,
	// and the runtime runs its sealer, which appends wake (shared/audit seal.go).
	Audit *audit.Log
	Log   *slog.Logger
	// Secrets reads the function's other secrets (keys); Env its other settings, for
	// capability packages that read their own configuration.
	Secrets secrets.Reader
	Env     *envconf.Env
}

// Open creates the clients. None of them dials here: a function starts listening at once
// (of-watchdog readiness) and a dependency that is down surfaces as a 503 per request
// rather than as a crash loop. Missing secrets, though, stop the start.
func Open(ctx context.Context, name string, cfg Config, needs Needs, sec secrets.Reader, log *slog.Logger) (*Deps, error) {
	d := &Deps{Name: name, Config: cfg, Log: log, Secrets: sec, Env: envconf.New(nil)}
	if needs.Postgres {
		pc, err := pgxpool.ParseConfig(cfg.PostgresDSN)
		if err != nil {
			return nil, fmt.Errorf("postgres_dsn: %w", err)
		}
		pw, err := sec.Optional("postgres-password")
		if err != nil {
			return nil, err
		}
		pc.ConnConfig.Password = pw
		pc.ConnConfig.ConnectTimeout = cfg.DependencyTimeout
		pc.MaxConns = int32(cfg.PostgresMaxConns)
		pc.MinConns = int32(cfg.PostgresMinConns)
		pc.HealthCheckPeriod = 10 * time.Second
		if d.Postgres, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, fmt.Errorf("postgres pool: %w", err)
		}
		if d.Audit, err = audit.FromSecrets(sec); err != nil {
			d.Close()
			return nil, err
		}
	}
	if needs.Redis {
		pw, err := sec.Optional("redis-password")
		if err != nil {
			d.Close()
			return nil, err
		}
		// One address: a single node; several: Redis Cluster; a master name: Sentinel
		// (the addresses are the sentinels'). Multi-key scripts and transactions keep
		// their keys in one slot with hash tags ({session id}).
		d.Redis = redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: splitAddrs(cfg.RedisAddr), MasterName: cfg.RedisMasterName, Password: pw, DB: cfg.RedisDB,
			PoolSize: cfg.RedisPoolSize, MaxRetries: 1,
			DialTimeout: cfg.DependencyTimeout, ReadTimeout: cfg.DependencyTimeout, WriteTimeout: cfg.DependencyTimeout,
		})
	}
	if needs.ObjectStore {
		ak, err := sec.Read("s3-access-key")
		if err != nil {
			d.Close()
			return nil, err
		}
		sk, err := sec.Read("s3-secret-key")
		if err != nil {
			d.Close()
			return nil, err
		}
		hc := &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.DependencyTimeout}).DialContext,
			ResponseHeaderTimeout: 4 * cfg.DependencyTimeout,
			MaxIdleConnsPerHost:   64,
		}}
		d.S3 = s3.New(s3.Options{
			Region:           cfg.S3Region,
			BaseEndpoint:     aws.String(cfg.S3Endpoint),
			UsePathStyle:     true, // MinIO serves buckets as paths
			Credentials:      credentials.NewStaticCredentialsProvider(ak, sk, ""),
			HTTPClient:       hc,
			RetryMaxAttempts: 2,
			// The payload's SHA-256 is signed (SigV4 over plain HTTP) and the store checks
			// it: a CRC32 beside it, computed and checked on every PUT, adds nothing.
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		})
	}
	if cfg.EventSink != "" {
		s, err := openSink(name, cfg.EventSink, sec)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("event sink: %w", err)
		}
		d.Sink = s
	}
	return d, nil
}

func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// EventSink takes one event and answers once it is safely delivered (nil) or not.
type EventSink interface {
	Send(ctx context.Context, ev event.Event) error
}

func openSink(name, sink string, sec secrets.Reader) (EventSink, error) {
	if !eventstream.IsNATS(sink) {
		return events.NewSender(sink, nil)
	}
	c := eventstream.Config{URL: sink}
	var err error
	if c.User, err = sec.Optional("nats-user"); err != nil {
		return nil, err
	}
	if c.Password, err = sec.Optional("nats-password"); err != nil {
		return nil, err
	}
	return eventstream.NewPublisher(c, name)
}

// Check pings every opened dependency and reports the first that fails as an outage.
func (d *Deps) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.Config.DependencyTimeout)
	defer cancel()
	if d.Postgres != nil {
		if err := d.Postgres.Ping(ctx); err != nil {
			return d.outage("postgres", err)
		}
	}
	if d.Redis != nil {
		if err := d.Redis.Ping(ctx).Err(); err != nil {
			return d.outage("redis", err)
		}
	}
	if p, ok := d.Sink.(*eventstream.Publisher); ok {
		if err := p.Check(); err != nil {
			return d.outage("nats", err)
		}
	}
	if d.S3 != nil {
		if _, err := d.S3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
			return d.outage("object-store", err)
		}
	}
	return nil
}

// Close releases pools; call it after the HTTP server has drained.
func (d *Deps) Close() {
	if d.Postgres != nil {
		d.Postgres.Close()
	}
	if d.Redis != nil {
		_ = d.Redis.Close()
	}
	if p, ok := d.Sink.(*eventstream.Publisher); ok {
		p.Close()
	}
}

// errors.Is-able marker for every classified outage.
var ErrUnavailable = errors.New("dependency unavailable")
