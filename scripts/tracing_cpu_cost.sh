#!/usr/bin/env bash
# CPU time per request of the release `suite` binary, with tracing off, on
# (OTLP/gRPC to a sink that discards), and on but unsampled: `perf stat -e
# task-clock` on the suite process alone while wrk (Debian) loads it with
# authenticated GET /api/v1/users/{id}. Less noisy than throughput on a
# shared machine, and the sink's own CPU is not counted.
# Needs: cargo build --release; wrk, perf (linux-perf), python3 with grpcio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${SUITE_BIN:-$PWD/target/release/suite}"
SINK_PORT=51317
python3 - "$SINK_PORT" <<'PY' &
import sys, time, grpc
from concurrent import futures
class Sink(grpc.GenericRpcHandler):
    def service(self, details):
        return grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"")
s = grpc.server(futures.ThreadPoolExecutor(4))
s.add_generic_rpc_handlers((Sink(),))
s.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
s.start()
time.sleep(3600)
PY
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true' EXIT

measure() {
  local label=$1; shift
  local dir; dir=$(mktemp -d)
  env "$@" RATE_LIMIT_BURST=1000000000 RATE_LIMIT_PER_SECOND=1000000000 RUST_LOG=warn \
    SUITE_DATA_DIR="$dir" SUITE_USER_ADDR=127.0.0.1:51051 SUITE_AUTH_ADDR=127.0.0.1:51052 \
    SUITE_GATEWAY_ADDR=127.0.0.1:51053 "$BIN" >"$dir/log" 2>&1 &
  local pid=$!
  local g=http://127.0.0.1:51053
  for _ in $(seq 1 50); do curl -fs "$g/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  local id token
  id=$(curl -fs -X POST "$g/api/v1/users" -H 'content-type: application/json' \
    -d '{"username":"cpu","email":"cpu@example.com","password":"correct horse battery staple"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  token=$(curl -fs -X POST "$g/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"login":"cpu","password":"correct horse battery staple"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
  wrk -t2 -c32 -d2s -H "Authorization: Bearer $token" "$g/api/v1/users/$id" >/dev/null
  perf stat -e task-clock -p "$pid" -o "$dir/perf.txt" -- sleep 8 &
  local perf_pid=$!
  wrk -t2 -c32 -d8s -H "Authorization: Bearer $token" "$g/api/v1/users/$id" >"$dir/wrk.txt"
  wait "$perf_pid"
  local requests ms
  requests=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
  ms=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$dir/perf.txt")
  python3 -c "print(f'{\"$label\":<34} {1000 * $ms / $requests:7.1f} µs CPU per request ({$requests} requests)')"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"
}

for _ in $(seq 1 "${ROUNDS:-1}"); do
  measure "off (no endpoint)"
  measure "on (every request sampled)" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT
  measure "on, unsampled (always_off)" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$SINK_PORT OTEL_TRACES_SAMPLER=always_off
done
