#!/usr/bin/env python3
"""The OpenID Connect provider under load: client-credentials grants, code
exchanges (a signed-in browser's authorize and the token call that redeems
its code) and introspections per second, beside GET /api/health in the same
run, and each service's memory after. The user, auth and gateway services run
as separate release processes on PostgreSQL (the machinery of
scripts/bench_deployed.py), loaded from outside by wrk.

Measures (wrk, --connections, --seconds each):
  health               GET /api/health: the gateway's HTTP ceiling on this box
  client-credentials   POST /oauth2/token grant_type=client_credentials, HTTP Basic
  code-exchange        a signed-in browser's GET /oauth2/authorize (single
                       sign-on, first-party client: answered with a code at
                       once) and the POST /oauth2/token that redeems the code
                       with its PKCE verifier; counted in redeemed codes
  introspection        POST /oauth2/introspect of a client-credentials token

Usage:
  python3 scripts/bench_oidc.py                 # builds target/release first
  python3 scripts/bench_oidc.py --no-build      # target/release as it is
Needs: wrk (apt-get install wrk), psql, a PostgreSQL at --postgres (trust auth).
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_deployed as bd  # noqa: E402

REDIRECT_URI = "http://127.0.0.1:9/callback"
# A fixed PKCE pair: the benchmark measures the provider, not the verifier's
# randomness.
VERIFIER = "bench-verifier-" + "x" * 40
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()

# Every answer counted by status; the done() line sums the threads.
COUNT_STATUSES = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function count(status) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = '"' .. k .. '": ' .. v end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
end
"""

WRK_FORM_LUA = COUNT_STATUSES + """
request = function()
  return wrk.format("POST", os.getenv("BENCH_PATH"), {
    ["Authorization"] = os.getenv("BENCH_BASIC"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, os.getenv("BENCH_BODY"))
end
response = function(status, headers, body) count(status) end
"""

# One connection alternates: authorize (302 with a code) then token (200).
# wrk answers a connection's requests in order, so a thread keeps the codes
# it was given in a queue and redeems one whenever it has one. Statuses:
# 302 counts authorizations, 200 redeemed codes.
WRK_CODE_LUA = COUNT_STATUSES + """
local codes = {}
request = function()
  local code = table.remove(codes)
  if code then
    return wrk.format("POST", "/oauth2/token", {
      ["Authorization"] = os.getenv("BENCH_BASIC"),
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }, "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. os.getenv("BENCH_REDIRECT")
       .. "&code_verifier=" .. os.getenv("BENCH_VERIFIER"))
  end
  return wrk.format("GET", os.getenv("BENCH_AUTHORIZE"), { ["Cookie"] = os.getenv("BENCH_COOKIE") })
end
response = function(status, headers, body)
  count(status)
  if status == 302 then
    local location = headers["Location"] or headers["location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    if code then table.insert(codes, code) end
  end
end
"""


def parse(out: str) -> dict:
    result = bd.parse_wrk(out)
    line = next((ln for ln in out.splitlines() if ln.startswith("STATUSES ")), "STATUSES {}")
    result["statuses"] = {int(k): v for k, v in json.loads(line[len("STATUSES "):]).items()}
    return result


def send(method: str, path: str, headers=None, body: str | None = None):
    conn = http.client.HTTPConnection(bd.GATEWAY_ADDR, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.getheaders(), data.decode(errors="replace")


def cookies_of(headers) -> dict:
    jar = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            k, _, v = pair.partition("=")
            jar[k.strip()] = v.strip()
    return jar


def register_client(bins: Path, data: Path) -> tuple[str, str]:
    out = subprocess.run(
        [str(bins / "suitectl"), "--auth-service-url", f"http://{bd.AUTH_ADDR}",
         "--user-service-url", f"http://{bd.USER_ADDR}",
         "--signing-key-file", str(data / "auth-signing-key.pem"), "--output", "json",
         "clients", "create", "--name", "bench", "--type", "confidential", "--first-party",
         "--redirect-uri", REDIRECT_URI,
         "--grant-type", "authorization_code", "--grant-type", "refresh_token",
         "--grant-type", "client_credentials",
         "--scope", "openid", "--scope", "profile", "--scope", "user:read"],
        check=True, capture_output=True, text=True).stdout
    created = json.loads(out)
    client = created.get("client", created)
    return client["clientId"] if "clientId" in client else client["client_id"], created.get(
        "clientSecret", created.get("client_secret"))


def sign_in(client_id: str, login: str) -> str:
    """Signs `login` in through the real pages; returns the Cookie header of
    the browser session and binding."""
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "state": "s", "nonce": "n",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256"})
    status, headers, page = send("GET", f"/oauth2/authorize?{query}")
    if status != 200:
        sys.exit(f"authorize: {status} {page[:500]}")
    jar = cookies_of(headers)
    fields = dict(re.findall(r'name="(request_id|csrf_token|redirect_origin)" value="([^"]*)"', page))
    form = urllib.parse.urlencode({**fields, "login": login, "password": bd.PASSWORD})
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    status, headers, page = send("POST", "/oauth2/signin", {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}, form)
    if status not in (302, 303):
        sys.exit(f"sign-in: {status} {page[:500]}")
    jar.update(cookies_of(headers))
    return "; ".join(f"{k}={v}" for k, v in jar.items()), query


def measure(suite: bd.Suite, bins: Path, tmp: Path, seconds: int, connections: int) -> list[tuple[str, dict]]:
    client_id, secret = register_client(bins, tmp / f"data-{suite.tag}")
    basic = "Basic " + base64.b64encode(
        f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}".encode()).decode()
    status, body = bd.call("POST", "/api/v1/users", {"username": "oidc-bench", "email": "oidc-bench@example.com",
                                                     "password": bd.PASSWORD})
    if status not in (200, 201):
        sys.exit(f"registration failed: {status} {body}")
    cookie, query = sign_in(client_id, "oidc-bench")
    status, _, token_body = send("POST", "/oauth2/token", {
        "Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
        "grant_type=client_credentials&scope=user:read")
    if status != 200:
        sys.exit(f"client credentials: {status} {token_body}")
    cc_token = json.loads(token_body)["access_token"]

    meter = bd.Meter(suite.pids())
    rows: list[tuple[str, dict]] = []
    plans = [
        ("health", bd.WRK_PATH_LUA, {"BENCH_PATH": "/api/health", "BENCH_TOKEN": ""}, "/"),
        ("client-credentials", WRK_FORM_LUA, {"BENCH_PATH": "/oauth2/token", "BENCH_BASIC": basic,
                                              "BENCH_BODY": "grant_type=client_credentials&scope=user:read"}, "/"),
        ("code-exchange", WRK_CODE_LUA, {"BENCH_BASIC": basic, "BENCH_COOKIE": cookie,
                                         "BENCH_AUTHORIZE": f"/oauth2/authorize?{query}",
                                         "BENCH_REDIRECT": urllib.parse.quote(REDIRECT_URI, safe=""),
                                         "BENCH_VERIFIER": VERIFIER}, "/"),
        ("introspection", WRK_FORM_LUA, {"BENCH_PATH": "/oauth2/introspect", "BENCH_BASIC": basic,
                                         "BENCH_BODY": f"token={cc_token}&token_type_hint=access_token"}, "/"),
    ]
    for name, script, env, path in plans:
        before = meter.snapshot()
        proc = bd.wrk_start(tmp, script, connections, seconds, env, path)
        bd.finish(proc)
        r = parse(proc.stdout.read() if proc.stdout else "")
        r["cpu"] = bd.Meter.delta(before, meter.snapshot())
        if name == "code-exchange":
            # Two requests per redeemed code: the figure is redeemed codes.
            r["per_second"] = r["statuses"].get(200, 0) / seconds
        else:
            r["per_second"] = r["statuses"].get(200, 0) / seconds if r.get("statuses") else r["rps"]
        rows.append((name, r))
        bd.log(f"  {name:<20} {r['per_second']:>8.0f}/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
               f"  statuses {r.get('statuses')}")
    rows.append(("memory after (MiB)", {"rss": suite.rss()}))
    return rows


def table(rows: list[tuple[str, dict]], seconds: int) -> str:
    out = ["| measure | per second | p50 ms | p99 ms | answers | CPU s (gateway, auth, user, postgres) |",
           "|---|---|---|---|---|---|"]
    for name, r in rows:
        if "rss" in r:
            out.append(f"| {name} | {', '.join(f'{k} {v:.1f}' for k, v in r['rss'].items())} | | | | |")
            continue
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("statuses", {}).items()))
        cpu = r.get("cpu", {})
        cpus = ", ".join(f"{cpu.get(k, 0):.1f}" for k in ("gateway", "auth", "user", "postgres"))
        out.append(f"| {name} | {r['per_second']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {answers} | {cpus} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins"], cwd=bd.ROOT, check=True)
    bins = bd.ROOT / "target/release"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=bd.ROOT, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-oidc-") as t:
        tmp = Path(t)
        suite = bd.Suite(bins, tmp, a.postgres, "oidc",
                         extra_env={"auth": {"PUBLIC_URL": f"http://{bd.GATEWAY_ADDR}"}})
        bd.log(f"[{commit}] starting user, auth and gateway from {bins}")
        suite.start()
        try:
            rows = measure(suite, bins, tmp, a.seconds, a.connections)
        finally:
            suite.stop()
    print(f"{time.strftime('%Y-%m-%d')}, {commit}, {os.cpu_count()} cores, {a.connections} connections, "
          f"{a.seconds} s per measure, PostgreSQL\n")
    print(table(rows, a.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
