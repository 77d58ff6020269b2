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
# shellcheck source=lib/tracing_cost.sh
source scripts/lib/tracing_cost.sh
start_otlp_sink "$SINK_PORT"

measure() {
  local label=$1; shift
  local dir; dir=$(mktemp -d)
  env "$@" RATE_LIMIT_BURST=1000000000 RATE_LIMIT_PER_SECOND=1000000000 RUST_LOG=warn \
    SUITE_DATA_DIR="$dir" SUITE_USER_ADDR=127.0.0.1:51051 SUITE_AUTH_ADDR=127.0.0.1:51052 \
    SUITE_GATEWAY_ADDR=127.0.0.1:51053 SUITE_GATEWAY_ADMIN_ADDR=127.0.0.1:51054 "$BIN" >"$dir/log" 2>&1 &
  local pid=$!
  local g=http://127.0.0.1:51053
  sign_up_and_log_in "$g" 50 http://127.0.0.1:51054
  local id=$USER_ID token=$TOKEN
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
