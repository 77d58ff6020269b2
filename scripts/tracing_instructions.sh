#!/usr/bin/env bash
# Instructions per request of the release `suite` binary, with tracing off,
# on (OTLP/gRPC to a sink that discards, every request sampled) and on but
# unsampled: the suite runs under valgrind's callgrind, which counts the
# user-space instructions it executes, so the result does not move with the
# machine's load the way CPU time does on a shared VM. The counters are
# zeroed after sign-up, login (argon2) and a warm-up, and read after
# REQUESTS authenticated GET /api/v1/users/{id} from CLIENTS keep-alive
# connections. Kernel work (the sockets) is not counted, so the added share
# is overstated rather than hidden.
# MODES picks some of: off on tenth unsampled; KEEP=1 keeps the callgrind files.
# Needs: cargo build --release; valgrind (Debian), python3 with grpcio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${SUITE_BIN:-$PWD/target/release/suite}"
REQUESTS="${REQUESTS:-4000}"
CLIENTS="${CLIENTS:-8}"
SINK_PORT=51318
# shellcheck source=lib/tracing_cost.sh
source scripts/lib/tracing_cost.sh
start_otlp_sink "$SINK_PORT"

# N authenticated GETs over C keep-alive connections; prints nothing.
load() {
  python3 - "$@" <<'PY'
import http.client, sys, threading
port, user, token, total, clients = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
failures = []
def run(n):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    for _ in range(n):
        c.request("GET", f"/api/v1/users/{user}", headers={"authorization": f"Bearer {token}"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            failures.append(r.status)
threads = [threading.Thread(target=run, args=(total // clients,)) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
if failures:
    sys.exit(f"{len(failures)} requests failed: {failures[:5]}")
PY
}

measure() {
  local label=$1; shift
  local dir; dir=$(mktemp -d)
  env "$@" RATE_LIMIT_BURST=1000000000 RATE_LIMIT_PER_SECOND=1000000000 RUST_LOG=warn \
    SUITE_DATA_DIR="$dir" SUITE_USER_ADDR=127.0.0.1:51061 SUITE_AUTH_ADDR=127.0.0.1:51062 \
    SUITE_GATEWAY_ADDR=127.0.0.1:51063 SUITE_GATEWAY_ADMIN_ADDR=127.0.0.1:51064 \
    valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$BIN" >"$dir/log" 2>&1 &
  local pid=$!
  local g=http://127.0.0.1:51063
  sign_up_and_log_in "$g" 750 http://127.0.0.1:51064
  local id=$USER_ID token=$TOKEN
  load 51063 "$id" "$token" 400 "$CLIENTS"
  callgrind_control -z "$pid" >/dev/null 2>&1
  load 51063 "$id" "$token" "$REQUESTS" "$CLIENTS"
  # Spans wait in the batch queue for up to 5 s: let them be exported.
  sleep 6
  callgrind_control -d "$pid" >/dev/null 2>&1
  local total
  total=$(cat "$dir"/callgrind.out.* | awk '/^(summary|totals):/ {print $2}' | sort -n | tail -1)
  python3 -c "print(f'{\"$label\":<34} {$total / $REQUESTS / 1000:8.1f} k instructions per request')"
  kill -TERM "$pid"; wait "$pid" || true
  if [ -n "${KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}

for mode in ${MODES:-off on tenth unsampled}; do
  case $mode in
    off) measure "off (no endpoint)" ;;
    on) measure "on (every request sampled)" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT ;;
    unsampled) measure "on, unsampled (always_off)" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER=always_off ;;
    tenth) measure "on, 10 % (chart default)" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 ;;
  esac
done
