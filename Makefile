# Verdict — every target installs what it needs from the project's own files.
SHELL := /bin/bash
NODE_MODULES_STAMP := node_modules/.package-lock.json
LISTEN ?= 127.0.0.1:50051
HTTP ?= 127.0.0.1:8080
POLICIES ?= policies

.PHONY: all install build test fuzz run validate policy-test bench bench-engine bench-usage bench-reload conformance clean

all: build

$(NODE_MODULES_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_MODULES_STAMP)

install: $(NODE_MODULES_STAMP)

build: install
	npx tsc -p tsconfig.json

# The full suite: unit tests, the example policy suites, and integration tests over real sockets.
test: build
	./bin/verdict.js test $(POLICIES) --min-coverage 100 --coverage-dir coverage
	bash test/support/ensure-nats.sh npx mocha

# Property-based fuzzing (test/fuzz) with many more cases than make test runs; VERDICT_FUZZ_RUNS
# sets the cases per property (default here 20000: about 5 to 10 minutes on 2 CPUs).
VERDICT_FUZZ_RUNS ?= 20000
fuzz: build
	VERDICT_FUZZ_RUNS=$(VERDICT_FUZZ_RUNS) bash test/support/ensure-nats.sh npx mocha --no-config --require dist/test/support/mocha-env.js --timeout 0 --exit 'dist/test/fuzz/**/*.test.js'

run: build
	./bin/verdict.js serve --policies $(POLICIES) --listen $(LISTEN) --http $(HTTP)

validate: build
	./bin/verdict.js validate $(POLICIES)

policy-test: build
	./bin/verdict.js test $(POLICIES) --min-coverage 100 --coverage-dir coverage

# BENCH_ARGS are passed to bench/engine/run.ts too, e.g. make bench-engine BENCH_ARGS="--runs 9 --write-docs".
bench-engine: build
	node dist/bench/engine/run.js $(BENCH_ARGS)

# The CPU a usage limit adds per check, in process (docs/performance.md#usage-limits-rates-and-quotas).
bench-usage: build
	node dist/bench/usage/run.js $(BENCH_ARGS)

# Policy reloads against real servers (1,000 and 10,000 types; about 14 minutes), e.g.
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
