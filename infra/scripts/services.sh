#!/usr/bin/env bash
# Installs, starts and stops the real servers the platform uses: PostgreSQL 15, Redis 7
# (Debian packages) and MinIO (built with `go install`, cached). Everything lives under a
# state directory; servers log to files there and are stopped by PID.
#
#   services.sh install            install what is missing (idempotent, cached)
#   services.sh up                 install if needed, start what is not running, write $STATE/env
#   services.sh down               stop what runs under $STATE (data is kept)
#   services.sh status             show what runs
#
# Settings (environment): SSCARD_STATE (default .state/run), SSCARD_PG_PORT (55432),
# SSCARD_REDIS_PORT (56379), SSCARD_MINIO_PORT (59000), SSCARD_CACHE (~/.cache/sscard).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${SSCARD_STATE:-$ROOT/.state/run}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
PG_PORT=${SSCARD_PG_PORT:-55432}
REDIS_PORT=${SSCARD_REDIS_PORT:-56379}
MINIO_PORT=${SSCARD_MINIO_PORT:-59000}
CACHE=${SSCARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sscard}
# MinIO has no semver releases on the module proxy; pin the pseudo-version that builds.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$CACHE/minio-$MINIO_VERSION/minio
PG_BIN=/usr/lib/postgresql/15/bin
BUCKETS="photos statements reports models"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }

install() {
	local missing=()
	[ -x "$PG_BIN/postgres" ] || missing+=(postgresql-15)
	command -v redis-server >/dev/null || missing+=(redis-server)
	command -v redis-cli >/dev/null || missing+=(redis-tools)
	command -v curl >/dev/null || missing+=(curl)
	# For the browser test of the H5 page and for make bench.
	command -v chromium >/dev/null || missing+=(chromium)
	dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)
	command -v wrk >/dev/null || missing+=(wrk)
	# For the edge-bridge: PC/SC (cgo with libpcsclite) and the vsmartcard virtual reader
	# driver its tests plug a virtual card into. The packages do not start pcscd; tests run
	# their own. Never install vsmartcard-vpcd on a production kiosk (it listens on TCP).
	command -v pcscd >/dev/null || missing+=(pcscd)
	command -v pkg-config >/dev/null || missing+=(pkg-config)
	pkg-config --exists libpcsclite 2>/dev/null || missing+=(libpcsclite-dev)
	[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || missing+=(vsmartcard-vpcd)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing Debian packages: ${missing[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$STATE/apt.log" 2>&1 || die "apt-get update failed; see $STATE/apt.log"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$STATE/apt.log" 2>&1 ||
			die "apt-get install failed; see $STATE/apt.log"
		# The Debian package starts a cluster of its own on 5432; we run ours, so stop it.
		as_root service postgresql stop >/dev/null 2>&1 || true
		as_root service redis-server stop >/dev/null 2>&1 || true
	fi
	if [ ! -x "$MINIO_BIN" ]; then
		log "building MinIO $MINIO_VERSION with go install (first time: several minutes; cached in $CACHE)"
		mkdir -p "$(dirname "$MINIO_BIN")"
		GOBIN=$(dirname "$MINIO_BIN") GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION" >"$STATE/minio-build.log" 2>&1 ||
			die "MinIO build failed; see $STATE/minio-build.log"
	fi
	# Not fatal: without the model files everything but face-match works (it answers 503).
	(face_models) || log "warning: face-match model files not fetched (run: services.sh face-models)"
}

# face-match's model: the npm package @vladmandic/face-api (MIT) ships the recognition
# net's TFJS weights and the demo photos the tests use. npm pack fetches the tarball
# without running install scripts; it is unpacked once into the cache.
FACE_API_VERSION=1.7.15
FACE_API_DIR=$CACHE/face-api-$FACE_API_VERSION/package
PIGO_VERSION=v1.4.6
PIGO_DIR=$CACHE/pigo-$PIGO_VERSION/cascade
face_models() {
	# pigo's cascades ship inside its Go module (MIT): copy them out of the module cache
	# rather than into the repository.
	if [ ! -s "$PIGO_DIR/puploc" ]; then
		local mod; mod=$(cd "$ROOT" && go mod download -json "github.com/esimov/pigo@$PIGO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
		[ -n "$mod" ] && [ -s "$mod/cascade/puploc" ] || die "pigo $PIGO_VERSION not in the module cache"
		mkdir -p "$PIGO_DIR" "$PIGO_DIR/../testdata" && cp "$mod/cascade/facefinder" "$mod/cascade/puploc" "$mod/LICENSE" "$PIGO_DIR/" &&
			cp "$mod/testdata/sample.jpg" "$PIGO_DIR/../testdata/"
	fi
	[ -s "$FACE_API_DIR/model/face_recognition_model.bin" ] && return
	command -v npm >/dev/null || die "npm is needed to fetch @vladmandic/face-api"
	log "fetching @vladmandic/face-api@$FACE_API_VERSION with npm pack into $CACHE"
	local tmp; tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "@vladmandic/face-api@$FACE_API_VERSION" >"$tmp/pack.log" 2>&1 &&
		tar -xzf vladmandic-face-api-$FACE_API_VERSION.tgz) || { rm -rf "$tmp"; die "npm pack of @vladmandic/face-api failed"; }
	rm -rf "$(dirname "$FACE_API_DIR")" && mkdir -p "$(dirname "$FACE_API_DIR")"
	mv "$tmp/package" "$FACE_API_DIR" && rm -rf "$tmp"
}

secret() { # secret NAME — generate once, never print
	local f="$STATE/secrets/$1"
	if [ ! -s "$f" ]; then
		mkdir -p "$STATE/secrets" && chmod 700 "$STATE/secrets"
		(umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$f")
	fi
	cat "$f"
}

# Local security keys (SM2 pairs, SM4 KEK, HMAC-SM3 keys), made on this machine and
# never overwritten; production keys come from the secret store.
security_secrets() {
	(cd "$ROOT" && go run ./infra/cmd/keygen -dir "$STATE/secrets" >"$STATE/keygen.log" 2>&1) ||
		die "keygen failed; see $STATE/keygen.log"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Postgres refuses to run as root. As root we run it as the postgres user, whose data
# directory must be reachable; when the checkout is not, the data goes below /var/tmp.
pg_data_dir() {
	if [ "$(id -u)" != 0 ]; then echo "$STATE/pg"; return; fi
	if runuser -u postgres -- test -x "$STATE" 2>/dev/null; then echo "$STATE/pg"; return; fi
	echo "/var/tmp/sscard-pg-$(printf '%s' "$STATE" | sha1sum | cut -c1-12)"
}
pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
	local data; data=$(pg_data_dir)
	local sock="$data/run"
	if [ -f "$data/postmaster.pid" ] && pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		log "postgres already running on $PG_PORT"; return
	fi
	local pw; pw=$(secret postgres-password)
	if [ ! -f "$data/PG_VERSION" ]; then
		log "initialising postgres in $data"
		# WAL in 64 MB segments, as a write-heavy production database has it: a segment
		# switch (every 2.7 s at 1,800 card status changes a second with 16 MB segments)
		# stalled commits for 50-100 ms in the loss-report bench. Clusters made before keep
		# their size.
		mkdir -p "$data"; [ "$(id -u)" = 0 ] && chown postgres: "$data"; chmod 700 "$data"
		pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --wal-segsize=64 >"$STATE/pg-init.log" 2>&1 ||
			die "initdb failed; see $STATE/pg-init.log"
		pg mkdir -p "$sock"
	fi
	# max_wal_size as a write-heavy production database has it (1GB, the default, made the
	# WAL of one benchmark phase start a checkpoint that ran through the next one, its
	# full-page writes doubling that phase's tail latency).
	pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
		-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $sock -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c max_wal_size=4GB -c checkpoint_timeout=15min" start >/dev/null ||
		die "postgres did not start; see $data/server.log"
	ln -sfn "$data/server.log" "$STATE/postgres.log"
	# Role and database (idempotent). The role may create databases: tests make one per package.
	pg "$PG_BIN/psql" -h "$sock" -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 -v pw="$pw" >/dev/null <<'SQL'
SELECT format('CREATE ROLE sscard LOGIN CREATEDB PASSWORD %L', :'pw') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='sscard') \gexec
SELECT format('ALTER ROLE sscard PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE sscard OWNER sscard' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='sscard') \gexec
SQL
	log "postgres on 127.0.0.1:$PG_PORT (log $STATE/postgres.log)"
}

start_redis() {
	if alive "$STATE/redis.pid"; then log "redis already running on $REDIS_PORT"; return; fi
	mkdir -p "$STATE/redis"
	local pw; pw=$(secret redis-password)
	# The password sits in a mode-600 include file, not in argv, so ps does not show it.
	printf 'requirepass %s\n' "$pw" >"$STATE/redis/auth.conf"; chmod 600 "$STATE/redis/auth.conf"
	cat >"$STATE/redis/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
dir $STATE/redis
daemonize yes
pidfile $STATE/redis.pid
logfile $STATE/redis.log
appendonly yes
appendfsync everysec
# Login polls rewrite a field of their session each time, so the append-only file grows
# by churn; do not fsync while a rewrite runs (its disk traffic stalls the event loop)
# and rewrite less often. A crash loses at most the last second either way.
no-appendfsync-on-rewrite yes
auto-aof-rewrite-min-size 256mb
save ""
include $STATE/redis/auth.conf
CONF
	redis-server "$STATE/redis/redis.conf" || die "redis did not start; see $STATE/redis.log"
	# PONG, not just an answer: while Redis loads its append-only file it answers LOADING.
	for _ in $(seq 600); do [ "$(REDISCLI_AUTH=$pw redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
	[ "$(REDISCLI_AUTH=$pw redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "redis not answering; see $STATE/redis.log"
	log "redis on 127.0.0.1:$REDIS_PORT (log $STATE/redis.log)"
}

start_minio() {
	if alive "$STATE/minio.pid"; then log "minio already running on $MINIO_PORT"; return; fi
	mkdir -p "$STATE/minio"
	local ak sk; ak=$(secret s3-access-key); sk=$(secret s3-secret-key)
	# The scanner (usage, lifecycle, healing) crawled the objects benchmarks leave behind
	# at a tenth of a core without end; on one local drive, slowest is plenty.
	MINIO_ROOT_USER=$ak MINIO_ROOT_PASSWORD=$sk MINIO_BROWSER=off MINIO_UPDATE=off MINIO_SCANNER_SPEED=slowest \
		nohup "$MINIO_BIN" server "$STATE/minio" --quiet --address "127.0.0.1:$MINIO_PORT" \
		--console-address "127.0.0.1:$((MINIO_PORT + 1))" >"$STATE/minio.log" 2>&1 </dev/null &
	echo $! >"$STATE/minio.pid"
	for _ in $(seq 150); do curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/live" >/dev/null 2>&1 && break; sleep 0.2; done
	curl -fsS "http://127.0.0.1:$MINIO_PORT/minio/health/live" >/dev/null || die "minio not healthy; see $STATE/minio.log"
	log "minio on http://127.0.0.1:$MINIO_PORT (log $STATE/minio.log)"
}

write_env() {
	cat >"$STATE/env" <<ENV
# written by infra/scripts/services.sh; the settings functions and tests use locally
export SSCARD_STATE='$STATE'
export postgres_dsn='postgres://sscard@127.0.0.1:$PG_PORT/sscard?sslmode=disable'
export redis_addr='127.0.0.1:$REDIS_PORT'
export s3_endpoint='http://127.0.0.1:$MINIO_PORT'
export secret_mount_path='$STATE/secrets'
export SSCARD_BUCKETS='$BUCKETS'
export SSCARD_PG_DATA='$(pg_data_dir)'
ENV
}

up() {
	install
	security_secrets
	start_postgres
	start_redis
	start_minio
	write_env
}

down() {
	local data; data=$(pg_data_dir)
	if [ -f "$data/postmaster.pid" ]; then
		pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 && log "postgres stopped" || true
	fi
	for s in redis minio; do
		if alive "$STATE/$s.pid"; then
			local pid; pid=$(cat "$STATE/$s.pid")
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$pid" 2>/dev/null || true
			log "$s stopped"
		fi
		rm -f "$STATE/$s.pid"
	done
}

status() {
	local data; data=$(pg_data_dir)
	pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 && echo "postgres  running  127.0.0.1:$PG_PORT" || echo "postgres  stopped"
	alive "$STATE/redis.pid" && echo "redis     running  127.0.0.1:$REDIS_PORT" || echo "redis     stopped"
	alive "$STATE/minio.pid" && echo "minio     running  http://127.0.0.1:$MINIO_PORT" || echo "minio     stopped"
}

case "${1:-}" in
install) install ;;
face-models) face_models ;;
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac
