// Package platform opens the warm dependencies of a function instance — the Postgres
// pool, the Redis client, the object store client and the event sender — once, with
// explicit pool sizes, and classifies their failures as outages (503) for callers.
package platform

import (
	"net/url"
	"strings"
	"time"

	"github.com/sscard/platform/shared/envconf"
)

// Needs says which dependencies a function uses; the others are never opened.
type Needs struct {
	Postgres    bool
	Redis       bool
	ObjectStore bool
}

// Config is the dependency configuration, read from the environment.
//
// Variables (defaults in brackets):
//
//	postgres_dsn           Postgres URL without password [postgres://sscard@127.0.0.1:5432/sscard?sslmode=disable]
//	postgres_max_conns     pool size per instance [4]; writes hold a connection through their commit's WAL flush,
//	                       so a write-heavy function wants more connections than the node has CPUs
//	postgres_min_conns     connections kept warm [0]
//	redis_addr             host:port [127.0.0.1:6379]; several, comma-separated: Redis Cluster
//	                       (seed nodes), or the sentinels when redis_master_name is set
//	redis_master_name      Sentinel master name [none]
//	redis_db               database number [0]
//	redis_pool_size        connections per instance [10]
//	s3_endpoint            MinIO/S3 base URL [http://127.0.0.1:9000]
//	s3_region              region [us-east-1]
//	dependency_timeout     dial/read timeout for every dependency [3s]
//	retry_after            Retry-After sent with 503 on an outage [5s]
//	K_SINK / event_sink    where the outbox relay sends CloudEvents (K_SINK wins, as Knative sets it):
//	                       nats://host:4222[,nats://…] publishes to JetStream (shared/eventstream;
//	                       secrets nats-user, nats-password), http(s)://… posts in binary mode
//	event_source           CloudEvents source of this function [/functions/<name>]
//	outbox_poll_interval   how often the relay looks for undelivered events [1s]
//
// Passwords and keys are secrets, never variables: postgres-password, redis-password,
// s3-access-key, s3-secret-key.
type Config struct {
	PostgresDSN       string
	PostgresMaxConns  int
	PostgresMinConns  int
	RedisAddr         string
	RedisMasterName   string
	RedisDB           int
	RedisPoolSize     int
	S3Endpoint        string
	S3Region          string
	DependencyTimeout time.Duration
	RetryAfter        time.Duration
	EventSink         string
	EventSource       string
	OutboxPoll        time.Duration
}

// LoadConfig reads Config for function name from environ.
func LoadConfig(name string, environ []string) (Config, error) {
	e := envconf.New(environ)
	c := Config{
		PostgresDSN:       e.String("postgres_dsn", "postgres://sscard@127.0.0.1:5432/sscard?sslmode=disable"),
		PostgresMaxConns:  e.Int("postgres_max_conns", 4, 1, 1000),
		PostgresMinConns:  e.Int("postgres_min_conns", 0, 0, 1000),
		RedisAddr:         e.String("redis_addr", "127.0.0.1:6379"),
		RedisMasterName:   e.String("redis_master_name", ""),
		RedisDB:           e.Int("redis_db", 0, 0, 15),
		RedisPoolSize:     e.Int("redis_pool_size", 10, 1, 10000),
		S3Endpoint:        e.String("s3_endpoint", "http://127.0.0.1:9000"),
		S3Region:          e.String("s3_region", "us-east-1"),
		DependencyTimeout: e.Duration("dependency_timeout", 3*time.Second),
		RetryAfter:        e.Duration("retry_after", 5*time.Second),
		EventSink:         e.String("K_SINK", e.String("event_sink", "")),
		EventSource:       e.String("event_source", "/functions/"+name),
		OutboxPoll:        e.Duration("outbox_poll_interval", time.Second),
	}
	if strings.Contains(c.RedisAddr, ",") && c.RedisMasterName == "" && c.RedisDB != 0 {
		e.Fail("redis_db", "Redis Cluster has only database 0")
	}
	if c.PostgresMinConns > c.PostgresMaxConns {
		e.Fail("postgres_min_conns", "must not exceed postgres_max_conns")
	}
	if u, err := url.Parse(c.PostgresDSN); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		e.Fail("postgres_dsn", "want a postgres:// URL")
	} else if _, has := u.User.Password(); has {
		// A password in a variable ends up in `faas-cli describe` and in logs.
		e.Fail("postgres_dsn", "must not carry a password; mount the postgres-password secret")
	}
	if u, err := url.Parse(c.S3Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		e.Fail("s3_endpoint", "want an http(s) URL")
	}
	for _, sink := range strings.Split(c.EventSink, ",") { // nats:// may list cluster members
		if c.EventSink == "" {
			break
		}
		if u, err := url.Parse(sink); err != nil || u.Host == "" {
			e.Fail("event_sink", "want an absolute URL (nats://… for JetStream, http(s)://… for a CloudEvents endpoint)")
			break
		}
	}
	if c.DependencyTimeout <= 0 {
		e.Fail("dependency_timeout", "must be positive")
	}
	return c, e.Err()
}
