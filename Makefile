# The platform's front door. `make run` starts everything locally; `make test` passes.
SHELL := /bin/bash
GO    ?= go
FUNCTIONS := $(notdir $(wildcard functions/*))

RUN_STATE  := .state/run
TEST_STATE := .state/test
# Test services run on ports of their own so `make test` never disturbs `make run`.
TEST_PG_PORT    ?= 55433
TEST_REDIS_PORT ?= 56380
TEST_MINIO_PORT ?= 59010
TEST_PORTS := SSCARD_STATE=$(TEST_STATE) SSCARD_PG_PORT=$(TEST_PG_PORT) SSCARD_REDIS_PORT=$(TEST_REDIS_PORT) SSCARD_MINIO_PORT=$(TEST_MINIO_PORT)

.PHONY: help run stop status build test unit integration services-test services-test-down bench fuzz \
        bench-face bench-reconcile bench-sms bench-photoaudit bench-kiosk bench-edge bench-events edge secrets \
        vet fmt knative schemas dockerfiles faas-template audit-verify bootstrap clean

help:
	@echo "make run     start Postgres, Redis, MinIO, the nine functions behind the local gateway (:8080) and the edge-bridge"
	@echo "make stop    stop everything make run started (data is kept in $(RUN_STATE))"
	@echo "make test    start the test services, run unit + integration tests, stop the services"
	@echo "make bench   benchmarks with their floors; make fuzz: longer fuzzing"
	@echo "make audit-verify   walk the audit chain of the make run database"

run:
	@infra/scripts/run.sh start

stop:
	@infra/scripts/run.sh stop

status:
	@infra/scripts/run.sh status

build:
	@mkdir -p $(RUN_STATE)/bin
	$(GO) build -o $(RUN_STATE)/bin/ ./functions/... ./infra/gateway ./infra/cmd/bootstrap ./edge-bridge \
	  ./infra/cmd/keygen ./infra/cmd/audit-verify ./infra/cmd/pii-rewrap ./infra/cmd/callers ./infra/connector

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# Unit tests need no server; integration tests (build tag `integration`) use the real
# Postgres, Redis and MinIO that services.sh starts on the test ports, stopped afterwards
# by PID whether the tests pass or fail.
test:
	@set -o pipefail; \
	$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	trap '$(TEST_PORTS) infra/scripts/services.sh down' EXIT; \
	$(GO) vet ./... && $(GO) vet -tags integration ./... && \
	$(GO) test -count=1 -race ./... && \
	$(GO) test -count=1 -tags integration -p 2 -timeout 20m ./... && \
	$(MAKE) --no-print-directory fuzz FUZZTIME=50000x

unit:
	$(GO) test -count=1 ./...

integration: services-test
	$(GO) test -count=1 -tags integration -p 2 -timeout 20m ./...

services-test:
	@$(TEST_PORTS) infra/scripts/services.sh up

services-test-down:
	@$(TEST_PORTS) infra/scripts/services.sh down

# Every fuzz target, each for FUZZTIME (make test runs them briefly; make fuzz longer).
# make test counts executions (50000x), not seconds: Go 1.26's fuzz coordinator can fail
# a target with "context deadline exceeded" when a duration ends under CPU contention
# (go.dev/issue/75804, fixed in Go 1.27), and a count has no deadline.
FUZZTIME ?= 2m
FUZZ_TARGETS := events:FuzzFromHTTP shared/gm:FuzzSM2Decrypt shared/gm:FuzzRawSignature \
  shared/callsign:FuzzCanonicalRequest shared/callsign:FuzzParseEnvelope shared/callsign:FuzzVerify \
  shared/pii:FuzzDecrypt shared/pii:FuzzNormalise shared/mask:FuzzIDNumber shared/mask:FuzzPhone \
  shared/mask:FuzzName shared/mask:FuzzBankAccount shared/identity:FuzzParse shared/identity:FuzzSplitForCard \
  shared/application:FuzzStripJPEG shared/application:FuzzVerifyJPEG
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do echo "fuzz $$t"; \
	  $(GO) test -run=NONE -fuzz="^$${t#*:}\$$" -fuzztime=$(FUZZTIME) ./$${t%%:*}/; done

# Benchmarks print their figures next to the floor each issue names, measured in the same
# run (ratios: these machines are shared and noisy). Not part of make test.
BENCH_DURATION ?= 30s
# The kernel writes back as on a database host for the run (infra/scripts/writeback.sh
# says why), and as it did before afterwards.
bench:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	saved=$$(infra/scripts/writeback.sh set); \
	trap '$(TEST_PORTS) infra/scripts/services.sh down; infra/scripts/writeback.sh restore "$$saved"' EXIT; \
	set -a; source $(TEST_STATE)/env; set +a; \
	$(GO) test -run=NONE -bench=. -benchtime=1s ./shared/gm ./shared/callsign ./shared/pii ./shared/application && \
	$(GO) run ./tests/bench/loginpoll -duration $(BENCH_DURATION) && \
	$(GO) run ./tests/bench/lifecycle -duration $(BENCH_DURATION)

# face-match (docs/face-match.md): time per face in Go against face-api in Node on the
# same photo, and 1:N search over FACE_N synthetic descriptors with recall against exact.
# Needs no servers; the model files come from the cache (services.sh face-models).
FACE_N ?= 1000000
bench-face:
	@infra/scripts/services.sh face-models && nice $(GO) run ./tests/bench/face -n $(FACE_N)
# Reconciliation: the job's join against DuckDB and PostgreSQL 15 on the same generated
# files (RECON_N rows each; 10M takes about 1.3 GB of disk in a temporary directory).
RECON_N ?= 10000000
bench-reconcile:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	trap '$(TEST_PORTS) infra/scripts/services.sh down' EXIT; \
	set -a; source $(TEST_STATE)/env; set +a; \
	cd tests/bench/reconcile && $(GO) run . -n $(RECON_N)
# The overdue photo-audit count over 10M photos (target <= 1 s), printed. Starts the test
# services (leaves them running: make services-test-down stops them).
bench-photoaudit:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	set -a; source $(TEST_STATE)/env; set +a; \
	$(GO) run ./tests/bench/photoaudit -photos $(PHOTOAUDIT_PHOTOS)

PHOTOAUDIT_PHOTOS ?= 10000000
# Every secret stack.yml mounts, from SECRETS_DIR (one file per secret), for PLATFORM
# openfaas (faas-cli) or knative (kubectl); docs/deploying.md names each.
PLATFORM ?= openfaas
secrets:
	@infra/scripts/secrets.sh $(PLATFORM) "$(SECRETS_DIR)"

# Events: outbox → NATS JetStream → connector → function against raw JetStream, same run
# (docs/events-transport.md).
bench-events:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	trap '$(TEST_PORTS) infra/scripts/services.sh down' EXIT; \
	set -a; source $(TEST_STATE)/env; set +a; \
	$(GO) run ./tests/bench/events -duration $(BENCH_EVENTS_DURATION)
BENCH_EVENTS_DURATION ?= 10s
# Kiosk event batches (500 per signed post) against the raw multi-row insert of the same
# rows in the same run: events/s of each and their ratio (docs/kiosk.md).
bench-kiosk:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	$(GO) test -tags integration -run=NONE -bench='Record|RawInsert' -benchtime=40x -count=3 ./shared/kiosk

# The edge-bridge for its three platforms into build/edge (docs/edge-bridge.md). linux/amd64
# links libpcsclite (cgo); windows/amd64 uses winscard.dll without cgo; linux/arm64 links
# the arm64 libpcsclite with Debian's cross gcc when it is installed (gcc-aarch64-linux-gnu,
# libpcsclite-dev:arm64), and otherwise builds without PC/SC (the reader reports "fault").
EDGE_OUT ?= build/edge
EDGE_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
EDGE_LDFLAGS := -s -w -X main.version=$(EDGE_VERSION)
edge:
	@mkdir -p $(EDGE_OUT)
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 $(GO) build -ldflags '$(EDGE_LDFLAGS)' -o $(EDGE_OUT)/edge-bridge-linux-amd64 ./edge-bridge
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build -ldflags '$(EDGE_LDFLAGS)' -o $(EDGE_OUT)/edge-bridge-windows-amd64.exe ./edge-bridge
	@if command -v aarch64-linux-gnu-gcc >/dev/null && [ -e /usr/lib/aarch64-linux-gnu/pkgconfig/libpcsclite.pc ]; then \
	  echo "linux/arm64 with PC/SC (cross gcc)"; \
	  CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu/pkgconfig PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
	    GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(EDGE_LDFLAGS)' -o $(EDGE_OUT)/edge-bridge-linux-arm64 ./edge-bridge; \
	else \
	  echo "linux/arm64 WITHOUT PC/SC: no cross gcc or libpcsclite-dev:arm64 (see docs/edge-bridge.md)"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(EDGE_LDFLAGS)' -o $(EDGE_OUT)/edge-bridge-linux-arm64 ./edge-bridge; \
	fi
	@ls -l $(EDGE_OUT)

# Store-and-forward drain rate to the real kiosk function beside raw bbolt writes of the
# same events, and the daemon's RSS idle and under the burst (docs/edge-bridge.md).
EDGE_BENCH_EVENTS ?= 20000
bench-edge:
	@$(TEST_PORTS) infra/scripts/services.sh up || exit 1; \
	trap '$(TEST_PORTS) infra/scripts/services.sh down' EXIT; \
	SSCARD_BENCH_EDGE=$(EDGE_BENCH_EVENTS) $(GO) test -count=1 -tags integration -run '^TestEdgeBridge_Bench$$' -v -timeout 20m ./tests/ | grep -E 'bench-edge|^(ok|FAIL|---)'

# Walks the audit chain of the make run database and reports the first broken link.
audit-verify:
	@set -a; source $(RUN_STATE)/env; set +a; $(GO) run ./infra/cmd/audit-verify

# Generated files, committed; tests fail when they are stale.
knative:
	$(GO) run ./infra/cmd/genknative

schemas:
	$(GO) run ./events/cmd/genschema

# After editing infra/openfaas/Dockerfile: every function carries an identical copy.
dockerfiles:
	@for f in functions/*/; do cp infra/openfaas/Dockerfile "$$f/Dockerfile"; done

# faas-cli needs ./template/dockerfile/template.yml or it pulls templates from the network.
faas-template:
	@mkdir -p template/dockerfile
	@cp infra/openfaas/template/dockerfile/template.yml template/dockerfile/template.yml
	@echo "template/dockerfile ready: faas-cli up -f stack.yml"

clean:
	rm -rf build template

# Sustained CMPP submit rate: our client against gocmpp's raw loops, same simulator, same
# run (floor: ours >= 0.8x the faster gocmpp loop). Needs no services.
bench-sms:
	$(GO) run ./tests/bench/sms -duration $(SMS_BENCH_DURATION)

SMS_BENCH_DURATION ?= 5s
