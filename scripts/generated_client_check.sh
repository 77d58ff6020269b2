#!/usr/bin/env bash
# An independent generator's client in use: openapi-python-client (PyPI)
# generates a Python client from the launched suite's served document
# (/api/openapi.json) into a temporary directory, and
# scripts/generated_client_check.py drives it: register, login, me, update,
# list. A document that marked too little as required, or the wrong types,
# would make the generated client refuse or mis-read these calls.
#
# Usage: scripts/generated_client_check.sh [path/to/suite-binary]
# Needs: python3 with pip (openapi-python-client is installed if missing), curl.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUITE_BIN="${1:-target/debug/suite}"
# Fixed ports below the ephemeral range, used by no other CI step.
PORT_BASE="${GENERATED_CLIENT_PORT_BASE:-20784}"
GENERATOR_VERSION="0.29.1"

if [[ "$(openapi-python-client --version 2>/dev/null)" != *"$GENERATOR_VERSION"* ]]; then
  python3 -m pip install --quiet --disable-pip-version-check "openapi-python-client==$GENERATOR_VERSION"
fi

# shellcheck source=lib/launch_suite.sh
source scripts/lib/launch_suite.sh
launch_suite "$SUITE_BIN" "$PORT_BASE"

OUT="$SUITE_DIR/generated"
mkdir -p "$OUT"
(cd "$OUT" && openapi-python-client generate --url "$GATEWAY/api/openapi.json" \
  --meta none --output-path "$OUT/suite_client")
PYTHONPATH="$OUT" python3 scripts/generated_client_check.py "$GATEWAY"
