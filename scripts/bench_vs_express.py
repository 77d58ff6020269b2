#!/usr/bin/env python3
"""The suite's launcher beside the seed's Express stack (../shared/peer-express),
in one run on the same PostgreSQL and the same wrk, as issue 32's table:

  health             GET /api/health (the HTTP ceiling)
  get-1-token        authenticated GET of a user, one token
  get-100-tokens     the same, 100 users' tokens in turn
  get-during-logins  the 100-token GET (8 connections) while 16 connections log
                     the 100 users in, in turn (logins spread over many accounts)
  memory             resident memory after the load (the suite: one process;
                     Express: its workers and primary)

Each stack runs alone while it is measured. Needs wrk (apt-get install -y wrk),
node/npm, PostgreSQL at 127.0.0.1:5432 (trust, user postgres) and a release
build of the launcher:

  cargo build --release --bins && python3 scripts/bench_vs_express.py [--seconds 10]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

PEER = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peer-express")
USERS = 100
PASSWORD = "analytical engine 1843"


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_up(url):
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"{url} never answered")


def psql(sql):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True,
                   stdout=subprocess.DEVNULL)


def rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def lua_rotating(path_of, tokens, method="GET", bodies=None):
    """A wrk script sending each request with the next token (and body).
    Requests made at load time get no Host from wrk: without one, Node
    answers 400 (hyper does not mind), so it is given."""
    lines = ["local reqs = {}"]
    for i, token in enumerate(tokens):
        body = json.dumps(bodies[i]) if bodies else None
        auth = '[\"authorization\"] = %s, ' % json.dumps("Bearer " + token) if token else ""
        lines.append(
            "reqs[%d] = wrk.format(%s, %s, {[\"Host\"] = \"127.0.0.1\", %s[\"content-type\"] = \"application/json\"}, %s)"
            % (i + 1, json.dumps(method), json.dumps(path_of(i)), auth, json.dumps(body) if body else "nil"))
    lines += ["local n = 0", "request = function() n = n % #reqs + 1 return reqs[n] end"]
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write("\n".join(lines))
    f.close()
    return f.name


def wrk(url, seconds, conns, script=None, header=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    if header:
        cmd += ["-H", header]
    out = subprocess.run(cmd + [url], capture_output=True, text=True).stdout
    rps = p99 = 0.0
    errors = 0
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif line.strip().startswith("99%"):
            p99 = to_ms(parts[1])
        elif line.strip().startswith("Non-2xx"):
            errors += int(parts[-1])
        elif line.strip().startswith("Socket errors"):
            errors += sum(int(x.strip(",")) for x in parts[3::2])
    return rps, p99, errors


def to_ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def measure(name, base, users, seconds, pids_of):
    """The rows of one stack: users are (id, token, login_body)."""
    rows = []
    get = users["get"]
    one = lua_rotating(lambda i: get(users["ids"][0]), users["tokens"][:1])
    many = lua_rotating(lambda i: get(users["ids"][i]), users["tokens"])
    logins = lua_rotating(lambda i: users["login_path"], [None] * USERS, "POST", users["login_bodies"])
    wrk(base + users["health"], 3, 32)  # warm-up
    rows.append(("health", *wrk(base + users["health"], seconds, 32)))
    wrk(base + "/", 3, 32, one)
    rows.append(("get-1-token", *wrk(base + "/", seconds, 32, one)))
    rows.append(("get-100-tokens", *wrk(base + "/", seconds, 32, many)))
    storm = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{seconds + 2}s", "--latency", "-s", logins, base + "/"],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    during = wrk(base + "/", seconds, 8, many)
    out = storm.communicate()[0]
    login_rps = next((float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec:")), 0.0)
    login_errors = sum(int(l.split()[-1]) for l in out.splitlines() if l.strip().startswith("Non-2xx"))
    rows.append(("get-during-logins", *during))
    rows.append(("logins (during)", login_rps, 0.0, login_errors))
    rows.append(("memory MiB", rss_mib(pids_of()), 0.0, 0))
    for f in (one, many, logins):
        os.unlink(f)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--suite", default="target/release/suite")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    work = tempfile.mkdtemp()
    results = {}

    # Express, 2 workers, its own database.
    peer = os.path.join(work, "peer")
    shutil.copytree(PEER, peer, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=peer, check=True)
    psql("DROP DATABASE IF EXISTS peer_bench WITH (FORCE)")
    psql("CREATE DATABASE peer_bench")
    express = subprocess.Popen(["node", "server.js"], cwd=peer, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PORT": "3900", "WORKERS": "2", "RATE_MAX": "100000000",
                                    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/peer_bench"})
    base = "http://127.0.0.1:3900"
    wait_up(base + "/api/health")
    ids, tokens, bodies = [], [], []
    for i in range(USERS):
        email = f"user{i:03}@example.com"
        http("POST", base + "/api/auth/register", {"username": f"user{i:03}", "email": email, "password": PASSWORD})
        _, r = http("POST", base + "/api/auth/login", {"email": email, "password": PASSWORD})
        ids.append(r["user"]["id"])
        tokens.append(r["token"])
        bodies.append({"email": email, "password": PASSWORD})
    results["express"] = measure("express", base, {
        "health": "/api/health", "get": lambda id: f"/api/users/{id}", "ids": ids, "tokens": tokens,
        "login_path": "/api/auth/login", "login_bodies": bodies,
    }, args.seconds, lambda: [express.pid] + children(express.pid))
    express.send_signal(signal.SIGTERM)
    express.wait()

    # The suite's launcher on PostgreSQL.
    for db in ("suite_bench_user", "suite_bench_auth"):
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql(f"CREATE DATABASE {db}")
    data = os.path.join(work, "data")
    suite = subprocess.Popen([os.path.abspath(args.suite)], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={
                                 **os.environ, "SUITE_USER_ADDR": "127.0.0.1:21501", "SUITE_AUTH_ADDR": "127.0.0.1:21502",
                                 "SUITE_GATEWAY_ADDR": "127.0.0.1:21503", "SUITE_DATA_DIR": data,
                                 "SUITE_USER_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/suite_bench_user",
                                 "SUITE_AUTH_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/suite_bench_auth",
                                 "RATE_LIMIT_BURST": "100000000", "RATE_LIMIT_PER_SECOND": "100000000",
                                 "AUTH_RATE_LIMIT_BURST": "100000000", "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
                                 "RUST_LOG": "warn"})
    base = "http://127.0.0.1:21503"
    wait_up(base + "/api/health")
    ids, tokens, bodies = [], [], []
    for i in range(USERS):
        status, r = http("POST", base + "/api/v1/users",
                         {"username": f"user{i:03}", "email": f"user{i:03}@example.com", "password": PASSWORD})
        if status != 201:
            sys.exit(f"registering u{i} at the suite: {status} {r}")
        ids.append(r["id"])
        _, t = http("POST", base + "/api/v1/auth/login", {"login": f"user{i:03}", "password": PASSWORD})
        tokens.append(t["accessToken"])
        bodies.append({"login": f"user{i:03}", "password": PASSWORD})
    results["suite"] = measure("suite", base, {
        "health": "/api/health", "get": lambda id: f"/api/v1/users/{id}", "ids": ids, "tokens": tokens,
        "login_path": "/api/v1/auth/login", "login_bodies": bodies,
    }, args.seconds, lambda: [suite.pid])
    suite.send_signal(signal.SIGTERM)
    suite.wait()

    print(f"| work | Express x2 req/s | p99 ms | errors | suite req/s | p99 ms | errors | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, e_rps, e_p99, e_err), (_, s_rps, s_p99, s_err) in zip(results["express"], results["suite"]):
        ratio = f"{s_rps / e_rps:.2f}x" if e_rps else "-"
        if name == "memory MiB":
            ratio = ""
        print(f"| {name} | {e_rps:,.0f} | {e_p99:.1f} | {e_err} | {s_rps:,.0f} | {s_p99:.1f} | {s_err} | {ratio} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Whatever happened, no server is left running.
        subprocess.run(["pkill", "-P", str(os.getpid())], check=False)
