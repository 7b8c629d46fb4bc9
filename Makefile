# Verdict — every target installs what it needs from the project's own files.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
LISTEN ?= 127.0.0.1:50051
HTTP ?= 127.0.0.1:8080
POLICIES ?= policies

.PHONY: all install build test run validate policy-test bench bench-engine bench-reload conformance clean

all: build

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_MODULES_STAMP)

install: $(NODE_MODULES_STAMP)

build: install
	npx tsc -p tsconfig.json

# The full suite: unit tests, the example policy suites, and integration tests over real sockets.
test: build
	./bin/verdict.js test $(POLICIES)
	bash test/support/ensure-nats.sh npx mocha

run: build
	./bin/verdict.js serve --policies $(POLICIES) --listen $(LISTEN) --http $(HTTP)

validate: build
	./bin/verdict.js validate $(POLICIES)

policy-test: build
	./bin/verdict.js test $(POLICIES)

# BENCH_ARGS are passed to bench/engine/run.ts too, e.g. make bench-engine BENCH_ARGS="--runs 9 --write-docs".
bench-engine: build
	node dist/bench/engine/run.js $(BENCH_ARGS)

# Policy reloads against real servers (1,000 and 10,000 types; about 10 minutes), e.g.
# make bench-reload BENCH_ARGS="--types 1000 --workers 2 --storm 0".
bench-reload: build
	node dist/bench/reload/run.js $(BENCH_ARGS)

# BENCH_ARGS are passed to bench/run.ts, e.g. make bench BENCH_ARGS="--reps 5 --write-docs".
bench: build
	bash bench/run.sh $(BENCH_ARGS)

conformance: build
	npm run conformance

clean:
	rm -rf dist
