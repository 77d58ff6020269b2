#!/usr/bin/env bash
# Passkeys in headless Chromium with the DevTools virtual authenticator
# against the launched suite (scripts/passkey_check.mjs): registration,
# passwordless sign-in on the sign-in page, a passkey as the second factor,
# and a cloned authenticator refused.
#
# Usage: scripts/passkey_check.sh [path/to/suite-binary] [path/to/suitectl]
# Needs: node, npm, curl, python3, /usr/bin/chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUITE_BIN="${1:-target/debug/suite}"
SUITECTL="${2:-target/debug/suitectl}"
# Fixed ports below the ephemeral range, used by no other CI step.
PORT_BASE="${PASSKEY_PORT_BASE:-20810}"

# shellcheck source=lib/launch_suite.sh
source scripts/lib/launch_suite.sh
ensure_playwright_core

# The issuer and the pages by name: a relying party is a domain, never an
# IP address, for browsers (and localhost may use http).
export PUBLIC_URL="http://localhost:$((PORT_BASE + 2))"
launch_suite "$SUITE_BIN" "$PORT_BASE"

ADMIN_PASSWORD="admin password for the passkey check"
echo "$ADMIN_PASSWORD" | "$SUITECTL" \
  --user-service-url "http://127.0.0.1:$PORT_BASE" \
  --auth-service-url "http://127.0.0.1:$((PORT_BASE + 1))" \
  --signing-key-file "$SUITE_DIR/auth-signing-key.pem" \
  admin create --username pkadmin --email pkadmin@example.com --password-stdin >/dev/null
ADMIN_TOKEN="$(curl -fsS -X POST "$GATEWAY/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"pkadmin\",\"password\":\"$ADMIN_PASSWORD\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')"

export ISSUER="$PUBLIC_URL" ADMIN_TOKEN PASSWORD="correct horse battery staple" \
  RP_PORT="$((PORT_BASE + 5))" PLAYWRIGHT_PREFIX SCREENSHOTS="${SCREENSHOTS:-$PWD/target}"
node scripts/passkey_check.mjs || {
  echo "--- the suite's log (last 80 lines)" >&2
  tail -n 80 "$SUITE_DIR/suite.log" >&2
  exit 1
}
# The clone was refused for its counter, and said so in the log.
if ! grep -q 'security_event="passkey_cloned"' "$SUITE_DIR/suite.log"; then
  echo "the cloned authenticator's refusal is not logged as passkey_cloned" >&2
  exit 1
fi
echo "ok: the clone's refusal is logged (security_event=passkey_cloned)"
