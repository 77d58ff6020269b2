#!/usr/bin/env bash
# Two independent relying parties against the launched suite: authlib
# (Python, PyPI) and openid-client 6 (Node, npm), each signing a user in
# through the real pages in headless Chromium (scripts/oidc/browser.mjs over
# playwright-core), then checking tokens, userinfo, refresh, client
# credentials, introspection, revocation, RP-initiated logout and (authlib)
# back-channel logout to a receiver of its own.
#
# Usage: scripts/oidc_rp_check.sh [path/to/suite-binary] [path/to/suitectl]
# Needs: node, npm, curl, python3 with authlib and requests,
# /usr/bin/chromium (`apt-get install chromium`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUITE_BIN="${1:-target/debug/suite}"
SUITECTL="${2:-target/debug/suitectl}"
# Fixed ports below the ephemeral range, used by no other CI step.
PORT_BASE="${OIDC_PORT_BASE:-20790}"
OPENID_CLIENT_VERSION="6.9.1"

# shellcheck source=lib/launch_suite.sh
source scripts/lib/launch_suite.sh
ensure_playwright_core
OPENID_CLIENT_PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/suite-ci/openid-client-$OPENID_CLIENT_VERSION"
if [[ ! -f "$OPENID_CLIENT_PREFIX/node_modules/openid-client/package.json" ]]; then
  mkdir -p "$OPENID_CLIENT_PREFIX"
  npm install --no-save --no-audit --no-fund --loglevel=error \
    --prefix "$OPENID_CLIENT_PREFIX" "openid-client@$OPENID_CLIENT_VERSION"
fi

# The issuer is the gateway the relying parties reach.
export PUBLIC_URL="http://127.0.0.1:$((PORT_BASE + 2))"
launch_suite "$SUITE_BIN" "$PORT_BASE"

# An admin (with the suite's signing key), whose token registers the clients.
ADMIN_PASSWORD="admin password for the relying parties"
echo "$ADMIN_PASSWORD" | "$SUITECTL" \
  --user-service-url "http://127.0.0.1:$PORT_BASE" \
  --auth-service-url "http://127.0.0.1:$((PORT_BASE + 1))" \
  --signing-key-file "$SUITE_DIR/auth-signing-key.pem" \
  admin create --username rpadmin --email rpadmin@example.com --password-stdin >/dev/null
ADMIN_TOKEN="$(curl -fsS -X POST "$GATEWAY/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"rpadmin\",\"password\":\"$ADMIN_PASSWORD\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')"

# The user who signs in through the pages.
PASSWORD="correct horse battery staple"
curl -fsS -X POST "$GATEWAY/api/v1/users" -H 'content-type: application/json' \
  -d "{\"username\":\"relying\",\"email\":\"relying@example.com\",\"password\":\"$PASSWORD\"}" >/dev/null

export ISSUER="$PUBLIC_URL" ADMIN_TOKEN LOGIN=relying PASSWORD OPENID_CLIENT_PREFIX PLAYWRIGHT_PREFIX

# On a failure, the suite's log says what the provider saw.
failed() {
  echo "--- the suite's log (last 80 lines)" >&2
  tail -n 80 "$SUITE_DIR/suite.log" >&2
  exit 1
}
echo "--- authlib"
BROWSER_STATE="$SUITE_DIR/authlib-browser.json" python3 scripts/oidc/rp_authlib.py || failed
echo "--- openid-client"
BROWSER_STATE="$SUITE_DIR/openid-client-browser.json" node scripts/oidc/rp_openid_client.mjs || failed
