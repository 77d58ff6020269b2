#!/usr/bin/env bash
# Vendors the API explorer's assets (Swagger UI, npm's `swagger-ui-dist`)
# into gateway/assets/swagger-ui/, which the gateway embeds with
# include_bytes! and serves at /api/docs: no CDN and no download at build or
# run time. The .gz copies are served to clients that accept gzip, so the
# gateway never compresses the bundle per request.
#
# Usage: scripts/vendor_docs_assets.sh [version]   (then commit the result)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION="${1:-5.35.0}"
DEST="gateway/assets/swagger-ui"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
mkdir -p "$DEST"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
  cp "$WORK/package/$f" "$DEST/$f"
done
for f in swagger-ui-bundle.js swagger-ui.css; do
  gzip -9 -n -c "$DEST/$f" >"$DEST/$f.gz"
done
echo "$VERSION" >"$DEST/VERSION"
ls -l "$DEST"
