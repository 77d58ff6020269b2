#!/usr/bin/env bash
# Drives the API explorer (GET /api/docs) of the launched suite in headless
# Chromium (Debian's `chromium`, through npm's playwright-core): the page lists
# the operations, loads nothing from another origin, breaks no rule of its
# CSP, and "try it out" works: GET /api/health, then GET /api/v1/users/{id}
# with id `me` and a bearer token from a login typed into "Authorize".
# A screenshot is kept; its path is printed.
#
# Usage: scripts/docs_page_check.sh [path/to/suite-binary] [screenshot.png]
# Needs: node, npm, curl, python3, /usr/bin/chromium (`apt-get install chromium`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUITE_BIN="${1:-target/debug/suite}"
SCREENSHOT="$(realpath -m "${2:-target/docs-page.png}")"
# Fixed ports below the ephemeral range, used by no other CI step.
PORT_BASE="${DOCS_PORT_BASE:-20780}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

# shellcheck source=lib/launch_suite.sh
source scripts/lib/launch_suite.sh
ensure_playwright_core
launch_suite "$SUITE_BIN" "$PORT_BASE"

PASSWORD="correct horse battery staple"
curl -fsS -X POST "$GATEWAY/api/v1/users" -H 'content-type: application/json' \
  -d "{\"username\":\"explorer\",\"email\":\"explorer@example.com\",\"password\":\"$PASSWORD\"}" >/dev/null
TOKEN="$(curl -fsS -X POST "$GATEWAY/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"explorer\",\"password\":\"$PASSWORD\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')"

mkdir -p "$(dirname "$SCREENSHOT")"
GATEWAY="$GATEWAY" TOKEN="$TOKEN" SCREENSHOT="$SCREENSHOT" CHROMIUM="$CHROMIUM" \
  node scripts/docs_page_check.mjs
