#!/usr/bin/env bash
# Side by side: the launcher of two trees (SQLite, defaults), one user's token,
# GET /api/v1/users/me with wrk (Debian's package), 32 connections, 2 x 10 s per
# launch, alternating the trees twice. Each tree is a clone built with
# `cargo build --release --bins`; BEFORE and AFTER name their directories.
#   BEFORE=/tmp/tm/before AFTER=/tmp/tm/after scripts/bench_get_side_by_side.sh
set -u
BEFORE=${BEFORE:?the older tree}
AFTER=${AFTER:?the newer tree}
run_one() { # name tree port_base
  local name=$1 tree=$2 base=$3 dir; dir=$(mktemp -d)
  (cd $dir && SUITE_USER_ADDR=127.0.0.1:$((base+1)) SUITE_AUTH_ADDR=127.0.0.1:$((base+2)) SUITE_GATEWAY_ADDR=127.0.0.1:$((base+3)) \
     RATE_LIMIT_BURST=1000000 RATE_LIMIT_PER_SECOND=1000000 AUTH_RATE_LIMIT_BURST=100000 RUST_LOG=warn \
     exec $tree/target/release/suite > $dir/log 2>&1) &
  local pid=$!
  local gw=127.0.0.1:$((base+3))
  for i in $(seq 1 100); do curl -s -o /dev/null http://$gw/api/health && break; sleep 0.2; done
  curl -s -X POST http://$gw/api/v1/users -H 'content-type: application/json' -d '{"username":"ada","email":"ada@example.com","password":"analytical engine 1843"}' > /dev/null
  local tok; tok=$(curl -s -X POST http://$gw/api/v1/auth/login -H 'content-type: application/json' -d '{"login":"ada","password":"analytical engine 1843"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["accessToken"])')
  wrk -t2 -c32 -d3s -H "authorization: Bearer $tok" http://$gw/api/v1/users/me > /dev/null 2>&1  # warm-up
  for round in 1 2; do
    echo "$name round $round: $(wrk -t2 -c32 -d10s --latency -H "authorization: Bearer $tok" http://$gw/api/v1/users/me | grep -E 'Requests/sec|99%' | tr -s ' ' | tr '\n' ' ')"
  done
  kill -TERM $pid; wait $pid 2>/dev/null
}
run_one before "$BEFORE" 21100
run_one after "$AFTER" 21200
run_one before "$BEFORE" 21100
run_one after "$AFTER" 21200
