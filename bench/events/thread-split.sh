#!/usr/bin/env bash
# Where a decision's CPU goes, thread by thread: starts `verdict serve --workers 1` on the example
# policies with the given flags, runs bench/grpc/load.js against it, and prints the CPU of each of
# the server's threads (main, V8 GC helpers, the decision publisher thread) and of nats-server,
# in µs per call, from /proc/<pid>/task/*/stat. Needs a built tree (npx tsc -p .).
#   bash bench/events/thread-split.sh --no-events
#   bash bench/events/thread-split.sh --nats nats://127.0.0.1:4222
#   METHOD=CheckBatch IN_FLIGHT=16 DURATION=10 bash bench/events/thread-split.sh --nats nats://127.0.0.1:4222
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
tag=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
stream="VSPLIT_${tag}"
cleanup() {
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  node -e "import('nats').then(async ({connect}) => { try { const nc = await connect({ servers: process.argv[1] }); const j = await nc.jetstreamManager(); await j.streams.delete(process.argv[2]).catch(() => 0); await nc.close(); } catch {} })" "${NATS_URL:-nats://127.0.0.1:4222}" "$stream"
  rm -rf "$work"
}
VERDICT_EVENTS_STREAM="$stream" VERDICT_EVENTS_SUBJECT_PREFIX="vsplit.${tag}" \
  node bin/verdict.js serve --policies policies --listen "127.0.0.1:${port}" --workers 1 --spool-dir "$work/spool" "$@" >"$work/server.log" 2>&1 &
pid=$!
trap cleanup EXIT
sleep 3
threads() { for t in /proc/"$pid"/task/*; do read -r -a s < <(sed 's/.*) //' "$t/stat"); echo "$(basename "$t") $(cat "$t/comm") $((s[11] + s[12])) ${s[11]} ${s[12]}"; done; }
nats_ticks() { local np; np=$(pgrep -x nats-server | head -1 || true); if [[ -n "$np" ]]; then awk '{print $14 + $15, $14, $15}' /proc/"$np"/stat; else echo 0 0 0; fi; }
threads >"$work/t0"; read -r n0 nu0 ns0 < <(nats_ticks)
out=$(node dist/bench/grpc/load.js --address "127.0.0.1:${port}" --server-pid "$pid" --method "${METHOD:-Check}" --in-flight "${IN_FLIGHT:-64}" --duration "${DURATION:-10}")
read -r n1 nu1 ns1 < <(nats_ticks); threads >"$work/t1"
echo "$out" | sed -n 1,3p
calls=$(echo "$out" | head -1 | grep -o '[0-9,]* calls' | tr -d ', calls')
hz=$(getconf CLK_TCK)
join "$work/t0" "$work/t1" | awk -v c="$calls" -v hz="$hz" '{ d = $7 - $3; if (d > 0) printf "thread %s %-16s %7.1f µs/call (user %.1f, system %.1f)\n", $1, $2, d * 1e6 / hz / c, ($8 - $4) * 1e6 / hz / c, ($9 - $5) * 1e6 / hz / c }'
awk -v d=$((n1 - n0)) -v du=$((nu1 - nu0)) -v ds=$((ns1 - ns0)) -v c="$calls" -v hz="$hz" 'BEGIN { printf "nats-server (whole process) %7.1f µs/call (user %.1f, system %.1f)\n", d * 1e6 / hz / c, du * 1e6 / hz / c, ds * 1e6 / hz / c }'
