#!/usr/bin/env bash
# A personal access token against a JWT, side by side in one run: the
# launcher (release build, SQLite, defaults), one user, GET /api/v1/users/me
# with wrk (Debian's package), 32 connections, 10 s a window, alternating
# JWT, PAT, JWT, PAT after a warm-up of each (the PAT's first request is its
# exchange; later ones hit the verifiers' caches).
#   cargo build --release --bins && scripts/bench_pat.sh [target/release/suite]
set -eu
SUITE=${1:-target/release/suite}
command -v wrk > /dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
dir=$(mktemp -d)
base=21300
gw=127.0.0.1:$((base+3))
(cd "$dir" && SUITE_USER_ADDR=127.0.0.1:$((base+1)) SUITE_AUTH_ADDR=127.0.0.1:$((base+2)) SUITE_GATEWAY_ADDR=$gw \
   RATE_LIMIT_BURST=1000000 RATE_LIMIT_PER_SECOND=1000000 AUTH_RATE_LIMIT_BURST=100000 RUST_LOG=warn \
   exec "$OLDPWD/$SUITE" > "$dir/log" 2>&1) &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://$gw/api/health" && break; sleep 0.2; done
curl -sf -X POST "http://$gw/api/v1/users" -H 'content-type: application/json' \
  -d '{"username":"ada","email":"ada@example.com","password":"analytical engine 1843"}' > /dev/null
jwt=$(curl -sf -X POST "http://$gw/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"login":"ada","password":"analytical engine 1843"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["accessToken"])')
expire=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
pat=$(curl -sf -X POST "http://$gw/api/v1/auth/tokens" -H "authorization: Bearer $jwt" -H 'content-type: application/json' \
  -d "{\"name\":\"bench\",\"scopes\":[\"user:read\"],\"expireTime\":\"$expire\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["secret"])')
for tok in "$jwt" "$pat"; do
  test "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $tok" "http://$gw/api/v1/users/me")" = 200
  wrk -t2 -c32 -d3s -H "authorization: Bearer $tok" "http://$gw/api/v1/users/me" > /dev/null 2>&1
done
for round in 1 2; do
  for kind in jwt pat; do
    if [ $kind = jwt ]; then tok=$jwt; else tok=$pat; fi
    out=$(wrk -t2 -c32 -d10s --latency -H "authorization: Bearer $tok" "http://$gw/api/v1/users/me")
    echo "$kind round $round: $(echo "$out" | grep -E 'Requests/sec|99%|Non-2xx' | tr -s ' ' | tr '\n' ' ')"
  done
done
