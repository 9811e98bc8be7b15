# Busbar — the two set-up commands are `make run` and `make test`.
GO          ?= go
BIN         := bin/busbar
LISTEN      ?= 127.0.0.1:8080
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test lint validate fuzz crash cluster bench bench-quick clean

build:
	$(GO) build -o $(BIN) ./cmd/busbar

# Serve the demo: the example routes and their demo backends, all in one process.
run: build
	./$(BIN) serve --config examples --listen $(LISTEN)

# Unit, end-to-end and interoperability tests (zeep needs Debian's python3-zeep; see .ci/run).
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

validate: build
	./$(BIN) validate examples

# The long versions of delivery's proof (docs/delivery.md); `make test` runs
# the short ones. crash: at least 10,000 acknowledged messages and 50
# SIGKILLs of the node (~1 minute here); cluster: 5,000 messages through two
# `busbar serve` nodes on a three-server JetStream cluster, one server and
# one node killed (~45 s here, most of it waiting out the ack wait of the
# killed node's messages). Both start their processes on 127.0.0.1 only.
CRASH_KILLS      ?= 50
CRASH_MESSAGES   ?= 10000
CLUSTER_MESSAGES ?= 5000
crash:
	BUSBAR_CRASH_KILLS=$(CRASH_KILLS) BUSBAR_CRASH_MESSAGES=$(CRASH_MESSAGES) \
		$(GO) test -count=1 -timeout 20m -v -run '^TestCrash$$' ./delivery/

cluster:
	BUSBAR_CLUSTER_MESSAGES=$(CLUSTER_MESSAGES) \
		$(GO) test -count=1 -timeout 20m -v -run '^TestThreeServerCluster$$' ./delivery/

# Long fuzzing runs, not part of `make test`: each target for FUZZTIME.
# Minimising a new input defaults to 60 s in Go and the WSDL seeds are large,
# which looks like a stall (execs stop growing), so minimisation is capped.
FUZZTIME ?= 60s
FUZZ_TARGETS := connectors:FuzzParseEnvelope wsdl:FuzzLoadBytes transforms:FuzzCompileExpr transforms:FuzzSchemaConversion transforms:FuzzParseXMLFast
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $$t"; \
		$(GO) test ./$${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s; \
	done

# The benchmark suite (bench/, docs/performance.md). Needs Debian's wrk and
# nginx and installs nothing: benchrun says what to apt-get when they are
# missing. bench takes ~28 minutes on 2 cores, bench-quick ~2-3 minutes.
BENCH_FLAGS ?=
bench:
	$(GO) build -o bin/benchrun ./bench/cmd/benchrun
	./bin/benchrun -mode full $(BENCH_FLAGS)

bench-quick:
	$(GO) build -o bin/benchrun ./bench/cmd/benchrun
	./bin/benchrun -mode quick $(BENCH_FLAGS)

clean:
	rm -rf bin
