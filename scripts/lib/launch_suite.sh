# Shared by scripts/docs_page_check.sh and scripts/generated_client_check.sh
# (sourced): the launcher binary on four fixed ports, its data in a temporary
# directory, stopped (and the directory removed) when the calling script exits.

# Starts "$1" (the suite binary) with user, auth, gateway and gateway admin on
# ports $2..$2+3, rate limits high enough for scripted clients, and waits up to
# a minute for readiness. Sets GATEWAY, ADMIN, SUITE_PID and SUITE_DIR.
launch_suite() {
  local bin=$1 base=$2
  GATEWAY="http://127.0.0.1:$((base + 2))"
  ADMIN="http://127.0.0.1:$((base + 3))"
  SUITE_DIR="$(mktemp -d)"
  trap 'stop_suite' EXIT
  RATE_LIMIT_PER_SECOND=100000 RATE_LIMIT_BURST=100000 \
    AUTH_RATE_LIMIT_PER_MINUTE=100000 AUTH_RATE_LIMIT_BURST=100000 \
    SUITE_DATA_DIR="$SUITE_DIR" \
    SUITE_USER_ADDR="127.0.0.1:$base" \
    SUITE_AUTH_ADDR="127.0.0.1:$((base + 1))" \
    SUITE_GATEWAY_ADDR="127.0.0.1:$((base + 2))" \
    SUITE_GATEWAY_ADMIN_ADDR="127.0.0.1:$((base + 3))" \
    "$bin" >"$SUITE_DIR/suite.log" 2>&1 &
  SUITE_PID=$!
  # The first start migrates two databases, slowly on a loaded machine.
  for _ in $(seq 1 300); do
    curl -fsS "$ADMIN/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SUITE_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "the suite did not become ready; its log:" >&2
  cat "$SUITE_DIR/suite.log" >&2
  return 1
}

# SIGTERM, which must end it cleanly after draining.
stop_suite() {
  if [[ -n "${SUITE_PID:-}" ]]; then
    kill -TERM "$SUITE_PID" 2>/dev/null || true
    wait "$SUITE_PID" 2>/dev/null || true
    SUITE_PID=""
  fi
  if [[ -n "${SUITE_DIR:-}" ]]; then rm -rf "$SUITE_DIR"; fi
}

# The playwright-core that .ci/run installs (installed here too if missing):
# sets PLAYWRIGHT_PREFIX.
PLAYWRIGHT_CORE_VERSION="1.65.1"
ensure_playwright_core() {
  PLAYWRIGHT_PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/suite-ci/playwright-core-$PLAYWRIGHT_CORE_VERSION"
  if [[ ! -f "$PLAYWRIGHT_PREFIX/node_modules/playwright-core/package.json" ]]; then
    mkdir -p "$PLAYWRIGHT_PREFIX"
    npm install --no-save --no-audit --no-fund --loglevel=error \
      --prefix "$PLAYWRIGHT_PREFIX" "playwright-core@$PLAYWRIGHT_CORE_VERSION"
  fi
  export PLAYWRIGHT_PREFIX
}
