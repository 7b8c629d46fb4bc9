#!/usr/bin/env bash
# `make bench`: build, then run the gRPC benchmark (bench/run.ts); arguments are passed through.
#   bash bench/run.sh --quick --servers empty
#   make bench BENCH_ARGS="--reps 5 --duration 10 --write-docs"
#   BENCH_DURATION=10 make bench          (every flag also reads BENCH_<FLAG>)
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
if [[ -n "${MAKELEVEL:-}" ]]; then
  cmd="make bench${*:+ BENCH_ARGS=\"$*\"}"
else
  cmd="bash bench/run.sh${*:+ $*}"
fi
export BENCH_COMMAND="${BENCH_COMMAND:-$cmd}"
# Events-on servers need NATS with JetStream: the one on 127.0.0.1:4222 when it answers, else a
# private nats-server (installed from Debian if missing), as the tests do.
if [[ -n "${VERDICT_BENCH_NATS_URL:-}" ]]; then exec node dist/bench/run.js "$@"; fi
exec bash test/support/ensure-nats.sh node dist/bench/run.js "$@"
