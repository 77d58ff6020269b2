#!/usr/bin/env bash
# Mail from the outside: the launched suite sends over SMTP to an independent
# server (aiosmtpd, scripts/mail/sink.py), and the links are followed as a
# person would, in headless Chromium with JavaScript off (playwright-core):
# the verification link (its page confirms only on the button's POST), then
# "Forgot your password?" from the sign-in page and the reset link. Then the
# relay goes down while mail is queued and comes back: every mail arrives,
# once.
#
# Usage: scripts/mail_check.sh [path/to/suite-binary]
# Needs: python3 with aiosmtpd, node, npm, curl, /usr/bin/chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUITE_BIN="${1:-target/debug/suite}"
# Fixed ports below the ephemeral range, used by no other CI step.
PORT_BASE="${MAIL_PORT_BASE:-20820}"
SMTP_PORT=$((PORT_BASE + 9))
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
MAILDIR="$(mktemp -d)"
SINK_PID=""

start_sink() {
  python3 scripts/mail/sink.py "$SMTP_PORT" "$MAILDIR" >"$MAILDIR/sink.log" 2>&1 &
  SINK_PID=$!
  for _ in $(seq 1 100); do
    grep -q listening "$MAILDIR/sink.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the SMTP sink did not start:" >&2
  cat "$MAILDIR/sink.log" >&2
  return 1
}
stop_sink() {
  if [[ -n "$SINK_PID" ]]; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=""
  fi
}

# shellcheck source=lib/launch_suite.sh
source scripts/lib/launch_suite.sh
ensure_playwright_core
start_sink
export SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" MAIL_FROM="Suite <no-reply@example.com>"
launch_suite "$SUITE_BIN" "$PORT_BASE"
trap 'stop_sink; stop_suite; rm -rf "$MAILDIR"' EXIT

link() { python3 scripts/mail/mailbox.py link "$MAILDIR" "$@"; }
count() { python3 scripts/mail/mailbox.py count "$MAILDIR" "$1"; }
PASSWORD="correct horse battery staple"
register() {
  curl -fsS -X POST "$GATEWAY/api/v1/users" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"$PASSWORD\"}" >/dev/null
}
login_status() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "$GATEWAY/api/v1/auth/login" \
    -H 'content-type: application/json' -d "{\"login\":\"$1\",\"password\":\"$2\"}"
}

echo "--- registration mails a verification link; the page confirms on its button"
register ada
VERIFY="$(link ada@example.com 'Confirm your email' /account/verify-email)"
TOKEN="$(curl -fsS -X POST "$GATEWAY/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"ada\",\"password\":\"$PASSWORD\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')"
verified() {
  curl -fsS "$GATEWAY/api/v1/users/me" -H "authorization: Bearer $TOKEN" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("emailVerified", False))'
}
# A mail scanner's GET confirms nothing.
curl -fsS -o /dev/null "$VERIFY"
[[ "$(verified)" == "False" ]] || { echo "a GET of the link verified the address" >&2; exit 1; }
STEP=verify LINK="$VERIFY" CHROMIUM="$CHROMIUM" node scripts/mail_check.mjs
[[ "$(verified)" == "True" ]] || { echo "the page's button did not verify the address" >&2; exit 1; }

echo "--- forgot password (the page the sign-in page links to), then the reset link"
STEP=forgot GATEWAY="$GATEWAY" LOGIN=ada CHROMIUM="$CHROMIUM" node scripts/mail_check.mjs
RESET="$(link ada@example.com 'Reset your' /account/reset-password)"
NEW_PASSWORD="marmalade quarry lantern 77"
STEP=reset LINK="$RESET" NEW_PASSWORD="$NEW_PASSWORD" CHROMIUM="$CHROMIUM" node scripts/mail_check.mjs
[[ "$(login_status ada "$NEW_PASSWORD")" == "200" ]] || { echo "the new password does not sign in" >&2; exit 1; }
[[ "$(login_status ada "$PASSWORD")" == "401" ]] || { echo "the old password still signs in" >&2; exit 1; }
link ada@example.com 'password was changed' /account/forgot-password >/dev/null

echo "--- the relay goes down while mail is queued, and comes back: each mail once"
stop_sink
for name in grace hopper lovelace; do register "$name"; done
for _ in $(seq 1 300); do
  grep -q "mail not sent; will retry" "$SUITE_DIR/suite.log" && break
  sleep 0.1
done
grep -q "mail not sent; will retry" "$SUITE_DIR/suite.log" || { echo "the mailer never tried the relay that was down" >&2; exit 1; }
start_sink
for name in grace hopper lovelace; do link "$name@example.com" 'Confirm your email' /account/verify-email 60 >/dev/null; done
# Until nothing is left to send (the outbox's depth, on the admin port's metrics).
for _ in $(seq 1 300); do
  curl -fsS "$ADMIN/metrics" | grep -q '^suite_user_mail_outbox_depth 0' && break
  sleep 0.1
done
for name in ada grace hopper lovelace; do
  n="$(count "$name@example.com")"
  echo "$name: $n mail(s)"
done
for name in grace hopper lovelace; do
  [[ "$(count "$name@example.com")" == "1" ]] || { echo "$name did not get exactly one mail" >&2; exit 1; }
done
echo "mail check passed"
