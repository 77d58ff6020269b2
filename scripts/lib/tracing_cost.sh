# Shared by scripts/tracing_cpu_cost.sh and scripts/tracing_instructions.sh
# (sourced): an OTLP/gRPC sink that discards, and a signed-up, logged-in
# user on a running suite.

# Starts the sink on 127.0.0.1:$1 (python3 with grpcio) and stops it when
# the calling script exits.
start_otlp_sink() {
  python3 - "$1" <<'PY' &
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
}

# Waits (up to $2 tries of 0.2 s) for the gateway at $1 to be ready (its
# /readyz at the admin URL $3), signs up and logs in; sets USER_ID and TOKEN.
sign_up_and_log_in() {
  local g=$1 tries=${2:-50} admin=$3
  for _ in $(seq 1 "$tries"); do curl -fs "$admin/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  USER_ID=$(curl -fs -X POST "$g/api/v1/users" -H 'content-type: application/json' \
    -d '{"username":"cpu","email":"cpu@example.com","password":"correct horse battery staple"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  TOKEN=$(curl -fs -X POST "$g/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"login":"cpu","password":"correct horse battery staple"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')
}
