# leadrouter: `make help` lists the targets.

GO        ?= go
BUF       := $(GO) tool -modfile=tools/go.mod buf
PKGS      := ./...
# The race detector needs cgo and a C compiler; without them tests still run.
RACE      := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null 2>&1 && echo -race)
BENCHTIME ?= 2s

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## run leadrouterd on the embedded store with examples/routing.yaml loaded
	$(GO) run ./cmd/leadrouterd --insecure --config examples/routing.yaml

.PHONY: build
build: ## build leadrouterd and leadctl into bin/
	$(GO) build -o bin/ ./cmd/leadrouterd ./cmd/leadctl

.PHONY: test
test: redis-server postgres ## run every test (race detector when cgo is available) against the embedded store and a real redis-server
	@[ -n "$(RACE)" ] || echo "note: no C compiler for cgo; running without -race"
	$(GO) test $(RACE) -count=1 -timeout 20m $(PKGS)

.PHONY: test-cluster
test-cluster: redis-server redis-cli ## the store, engine, server, metrics and leadrouterd tests on a local 6-node Redis Cluster, then the master-failover test (prints its window)
# LEADROUTER_TEST_CLUSTER=1: internal/redistest starts 3 masters and 3
# replicas from redis-server on loopback ports for each test binary and
# runs every real-Redis test on them, plus the cluster-only tests (spread
# over masters, SCRIPT FLUSH on every master, Ping of every master);
# cmd/leadrouterd's tests run leadrouterd processes with a redis+cluster:// URL.
	LEADROUTER_TEST_CLUSTER=1 $(GO) test $(RACE) -count=1 -timeout 20m -skip TestClusterMasterFailover \
		./store/... ./engine/... ./server/... ./metrics/... ./cmd/leadrouterd/...
	LEADROUTER_TEST_CLUSTER=1 $(GO) test $(RACE) -count=1 -timeout 10m -v -run TestClusterMasterFailover ./server/

.PHONY: chaos
chaos: redis-server ## the fault tests (part of make test) against real redis-server and leadrouterd processes; prints what each checked
	$(GO) test $(RACE) -count=1 -v -run Chaos ./chaos/

.PHONY: redis-server
redis-server: # the tests start their own redis-server (or use REDIS_URL); install it when missing
	@if [ -z "$$REDIS_URL" ] && ! command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server not found: installing Debian's redis-server package"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
		|| { echo "install redis-server (or set REDIS_URL) and run make test again" >&2; exit 1; }; \
	fi

.PHONY: postgres
postgres: # the archive sink's tests start their own PostgreSQL (initdb, pg_ctl) unless PG_URL is set; install it when missing
	@if [ -z "$$PG_URL" ] && ! { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1; then \
		echo "initdb not found: installing Debian's postgresql package"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
		|| { echo "install postgresql (or set PG_URL) and run make test again" >&2; exit 1; }; \
	fi

.PHONY: redis-cli
redis-cli: # the cluster tests create clusters with redis-cli; install it when missing
	@if ! command -v redis-cli >/dev/null 2>&1; then \
		echo "redis-cli not found: installing Debian's redis-tools package"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends redis-tools >/dev/null \
		|| { echo "install redis-tools (redis-cli) and run make test-cluster again" >&2; exit 1; }; \
	fi

.PHONY: bench
bench: redis-server redis-cli postgres ## AssignLead vs a one-EVALSHA gRPC baseline and a store floor (leadbench), config scale, stream delivery, allocs/op, 1 Redis vs cluster, memory sizing; see BENCHMARKS.md
# Every step runs, and the target fails at the end if any step failed.
# LEADBENCH_FLAGS passes flags to leadbench (go run ./cmd/leadbench -h).
# BEFORE=<git revision> also measures that revision's leadrouterd first,
# with the same leadbench against its own store floor, so a change reports
# its before and after from one invocation.
	@set -u; dir=$$(mktemp -d); trap 'git worktree remove --force "$$dir/before" 2>/dev/null; rm -rf "$$dir"' EXIT; failed=""; \
	step() { echo "+ $$*"; "$$@" || failed="$$failed\n  $$*"; }; \
	echo "+ $(GO) build -o $$dir/ ./cmd/leadrouterd ./cmd/leadbench"; \
	$(GO) build -o "$$dir/" ./cmd/leadrouterd ./cmd/leadbench || exit 1; \
	if [ -n "$(BEFORE)" ]; then \
		echo "+ before: leadrouterd of $(BEFORE) ($$(git rev-parse --short $(BEFORE)))"; \
		git worktree add -q --detach "$$dir/before" $(BEFORE) && mkdir -p "$$dir/b" && \
		(cd "$$dir/before" && $(GO) build -o "$$dir/b/" ./cmd/leadrouterd) || exit 1; \
		step "$$dir/leadbench" --leadrouterd "$$dir/b/leadrouterd" $(LEADBENCH_FLAGS); \
		step "$$dir/leadbench" --leadrouterd "$$dir/b/leadrouterd" --view basic --concurrency 32 --rates 1000 $(LEADBENCH_FLAGS); \
		echo "+ after: leadrouterd of the working tree"; \
	fi; \
	step "$$dir/leadbench" --leadrouterd "$$dir/leadrouterd" $(LEADBENCH_FLAGS); \
	step "$$dir/leadbench" --leadrouterd "$$dir/leadrouterd" --view basic --concurrency 32 --rates 1000 $(LEADBENCH_FLAGS); \
	step $(GO) test -run '^$$' -bench ConfigScale -benchtime 3000x -benchmem ./server; \
	step $(GO) test -run '^$$' -bench ApplyLargeConfig -benchtime 1x ./server; \
	step $(GO) test -run '^$$' -bench WatchAssignmentsFanout -benchtime 1x -benchmem ./server; \
	step $(GO) test -run '^$$' -bench AssignWhileWatching -benchtime 1x ./server; \
	step $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./engine/...; \
	step $(GO) test -run '^$$' -bench ScaleOut -benchtime 6000x -benchmem ./server; \
	step $(GO) test -run '^$$' -bench Sinks -benchtime 1x ./sinks; \
	step $(GO) test -run '^$$' -bench Sizing -benchtime 1x ./store; \
	if [ -n "$$failed" ]; then printf "make bench: failed:$$failed\n" >&2; exit 1; fi

.PHONY: proto
proto: ## regenerate gen/ and httpapi/openapi/ from proto/ (and the HTTP routes of proto/leadrouter/v1/leadrouter_http.yaml) with buf and the plugins pinned in go.mod
	$(BUF) format -w
	$(BUF) generate

.PHONY: proto-check
proto-check: ## fail when gen/ (code, the HTTP gateway) or httpapi/openapi (the OpenAPI document) differs from what proto/ generates
	$(BUF) generate
	@git diff --exit-code -- gen/ httpapi/openapi/ && [ -z "$$(git status --porcelain -- gen/ httpapi/openapi/)" ] || { echo "gen/ or httpapi/openapi/ is stale: run make proto and commit" >&2; exit 1; }
	@[ -z "$$(git status --porcelain -- gen/)" ] || { git status --porcelain -- gen/; echo "gen/ has untracked files: run make proto and commit" >&2; exit 1; }

.PHONY: lint
lint: ## gofmt, go vet, buf lint and buf format
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); [ -z "$$out" ] || { echo "gofmt needed:" $$out >&2; exit 1; }
	$(GO) vet $(PKGS)
	$(BUF) lint
	$(BUF) format -d --exit-code

.PHONY: fuzz
fuzz: ## run each fuzzer for FUZZTIME (default 30s; a count such as 40000x works too); seed corpora are in */testdata/fuzz
	$(GO) test ./engine -run '^$$' -fuzz FuzzNormalizeLead -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./engine -run '^$$' -fuzz FuzzParseConfigYAML -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./server -run '^$$' -fuzz FuzzConfigFromProto -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./auth -run '^$$' -fuzz FuzzParseFile -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./auth -run '^$$' -fuzz FuzzVerifyJWT -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./store -run '^$$' -fuzz FuzzParseURL -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./engine -run '^$$' -fuzz FuzzBodyPath -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./httpapi -run '^$$' -fuzz FuzzIntakeBody -fuzztime $${FUZZTIME:-30s}
