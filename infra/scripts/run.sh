#!/usr/bin/env bash
# `make run`: services, migrations and buckets, every function behind the local gateway,
# schedules, the event broker and the edge-bridge. Ctrl-C or `make stop` stops it all by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export SSCARD_STATE=${SSCARD_STATE:-$ROOT/.state/run}
STATE=$SSCARD_STATE
GATEWAY=${SSCARD_GATEWAY:-127.0.0.1:8080}
BRIDGE=${SSCARD_BRIDGE:-127.0.0.1:8090}
SMSSIM=${SSCARD_SMSSIM:-127.0.0.1:7890}     # CMPP; SMGP, SGIP and our SGIP receiver on the next three ports
SMSSIM_HOST=${SMSSIM%:*} SMSSIM_PORT=${SMSSIM##*:}
mkdir -p "$STATE/logs"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

stop_all() {
	touch "$STATE/stopping" # tells a foreground `make run` that this stop is wanted
	for p in edge-bridge gateway smssim; do
		if alive "$STATE/$p.pid"; then
			kill "$(cat "$STATE/$p.pid")" 2>/dev/null || true
			for _ in $(seq 150); do alive "$STATE/$p.pid" || break; sleep 0.1; done
			echo "[run] $p stopped"
		fi
		rm -f "$STATE/$p.pid"
	done
	infra/scripts/services.sh down
}

start() {
	if alive "$STATE/gateway.pid"; then echo "[run] already running (make stop first)"; status; exit 0; fi
	rm -f "$STATE/stopping"
	infra/scripts/services.sh up
	# shellcheck disable=SC1091
	source "$STATE/env"
	echo "[run] building functions, gateway and edge-bridge"
	make --no-print-directory build >/dev/null
	"$STATE/bin/bootstrap" >"$STATE/logs/bootstrap.log" 2>&1 || { echo "[run] bootstrap failed; see $STATE/logs/bootstrap.log"; stop_all; exit 1; }
	# Signed callers of the bank, outlet and kiosk channels: keys generated into $STATE/callers.
	"$STATE/bin/callers" local -dir "$STATE/callers" >"$STATE/logs/callers.log" 2>&1 || { echo "[run] registering local callers failed; see $STATE/logs/callers.log"; stop_all; exit 1; }
	# The local carriers: the SMS gateway simulators sms-alert sends through (CMPP for the
	# mobile and fallback channels, SMGP for telecom, SGIP for unicom, whose reports come
	# back to sms-alert's receiver); what they received is in logs/sms-received.jsonl.
	go build -o "$STATE/bin/" ./infra/cmd/smssim
	[ -s "$STATE/smssim-secret" ] || (umask 077; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/smssim-secret")
	"$STATE/bin/smssim" -cmpp "$SMSSIM" -smgp "$SMSSIM_HOST:$((SMSSIM_PORT + 1))" -sgip "$SMSSIM_HOST:$((SMSSIM_PORT + 2))" \
		-sgip-report-to "$SMSSIM_HOST:$((SMSSIM_PORT + 3))" -secret-file "$STATE/smssim-secret" \
		-log "$STATE/logs/sms-received.jsonl" >"$STATE/logs/smssim.log" 2>&1 </dev/null &
	echo $! >"$STATE/smssim.pid"
	# The local e-card authority plays the national e-card platform and the phone: stack.yml
	# takes ecard_authority from ECARD_AUTHORITY, and functions accept "local" only with the
	# development switch, which the gateway passes on from this environment (docs/security.md).
	SMS_SIM_SECRET=$(cat "$STATE/smssim-secret") SMS_MOBILE_ADDR=$SMSSIM SMS_FALLBACK_ADDR=$SMSSIM \
	SMS_TELECOM_ADDR=$SMSSIM_HOST:$((SMSSIM_PORT + 1)) SMS_UNICOM_ADDR=$SMSSIM_HOST:$((SMSSIM_PORT + 2)) \
	SMS_UNICOM_LISTEN=$SMSSIM_HOST:$((SMSSIM_PORT + 3)) \
	ECARD_AUTHORITY=local sscard_development=true \
	"$STATE/bin/gateway" -listen "$GATEWAY" -stack stack.yml -bin "$STATE/bin" -logs "$STATE/logs" \
		>"$STATE/logs/gateway.log" 2>&1 </dev/null &
	echo $! >"$STATE/gateway.pid"
	for _ in $(seq 600); do curl -fsS "http://$GATEWAY/healthz" >/dev/null 2>&1 && break
		alive "$STATE/gateway.pid" || { echo "[run] gateway exited; see $STATE/logs/gateway.log"; stop_all; exit 1; }
		sleep 0.1; done
	# The local kiosk signs with the key `callers local` generated (docs/edge-bridge.md).
	"$STATE/bin/edge-bridge" -listen "$BRIDGE" -gateway "http://$GATEWAY" -state "$STATE/edge-bridge" -kiosk-id "dev-kiosk-01" \
		-key "$STATE/callers/dev-kiosk-01.key" -key-id local-1 -server-sign-key "$STATE/secrets/callsign-sign-public-key" \
		-server-enc-key "$STATE/secrets/callsign-enc-public-key" \
		>"$STATE/logs/edge-bridge.log" 2>&1 </dev/null &
	echo $! >"$STATE/edge-bridge.pid"
	status
	echo
	echo "Ctrl-C (or make stop in another terminal) stops everything; data stays in $STATE."
	trap 'echo; stop_all; exit 0' INT TERM
	while alive "$STATE/gateway.pid"; do sleep 1; done
	[ -f "$STATE/stopping" ] && exit 0 # stopped by make stop
	echo "[run] gateway exited; see $STATE/logs/gateway.log"
	stop_all
	exit 1
}

status() {
	infra/scripts/services.sh status
	if alive "$STATE/gateway.pid"; then
		echo "gateway   running  http://$GATEWAY   (log $STATE/logs/gateway.log)"
		for f in $(ls functions); do
			printf '  %-18s http://%s/function/%s   (log %s)\n' "$f" "$GATEWAY" "$f" "$STATE/logs/$f.log"
		done
		echo "  events             NATS JetStream embedded in the gateway (store $STATE/nats, log $STATE/logs/nats.log);"
		echo "                     dead letters: go run ./infra/connector dead-letters (nats_url from the gateway log)"
		echo "  schedules          http://$GATEWAY/system/schedules"
	else
		echo "gateway   stopped"
	fi
	alive "$STATE/smssim.pid" && echo "smssim    running  CMPP $SMSSIM, SMGP :$((SMSSIM_PORT + 1)), SGIP :$((SMSSIM_PORT + 2)) (simulated carriers; received: $STATE/logs/sms-received.jsonl)" || echo "smssim    stopped"
	alive "$STATE/edge-bridge.pid" && echo "edge-bridge running  http://$BRIDGE/status   (log $STATE/logs/edge-bridge.log)" || echo "edge-bridge stopped"
}

case "${1:-start}" in
start) start ;;
stop) stop_all ;;
status) status ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
