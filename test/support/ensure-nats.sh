#!/usr/bin/env bash
# Runs "$@" with VERDICT_TEST_NATS_URL pointing at a NATS server with JetStream.
# Uses the one on 127.0.0.1:4222 when it answers; otherwise installs Debian's nats-server if
# needed and starts a private one on a free port, stopped again when the command ends.
set -euo pipefail

if [[ -n "${VERDICT_TEST_NATS_URL:-}" ]]; then exec "$@"; fi

if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  export VERDICT_TEST_NATS_URL="nats://127.0.0.1:4222"
  exec "$@"
fi

NATS_BIN="$(command -v nats-server || true)"
if [[ -z "$NATS_BIN" && -x /usr/sbin/nats-server ]]; then NATS_BIN=/usr/sbin/nats-server; fi
if [[ -z "$NATS_BIN" ]]; then
  echo "ensure-nats: no NATS on 127.0.0.1:4222 and no nats-server; installing Debian's nats-server" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >&2
  NATS_BIN="$(command -v nats-server || echo /usr/sbin/nats-server)"
fi

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
STORE="$(mktemp -d -t verdict-nats-XXXXXX)"
"$NATS_BIN" -a 127.0.0.1 -p "$PORT" -js -sd "$STORE" >"$STORE/server.log" 2>&1 &
NATS_PID=$!
cleanup() { kill "$NATS_PID" 2>/dev/null || true; wait "$NATS_PID" 2>/dev/null || true; rm -rf "$STORE"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "ensure-nats: started nats-server with JetStream on 127.0.0.1:$PORT" >&2
export VERDICT_TEST_NATS_URL="nats://127.0.0.1:$PORT"
export VERDICT_TEST_NATS_BIN="$NATS_BIN"
"$@"
