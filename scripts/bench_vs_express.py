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

  cargo build --release --bins && python3 scripts/bench_vs_express.py [--seconds 10] [--rounds 2] \
      [--variant suite --variant no-cache:USER_CACHE=off]

The stacks are measured in turn, each round (Express, then each variant of
the launcher), so that a machine whose speed drifts during the run drifts
for all of them alike.
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
from pathlib import Path

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
    # Each wrk thread starts at its own place: threads in step would send
    # the same account's login at once, which the suite answers with one
    # password check (identical checks in flight are shared), and a storm
    # "over many accounts" would not be one.
    lines += ["local threads = 0",
              "function setup(thread) thread:set('thread_index', threads) threads = threads + 1 end",
              "local n = 0",
              "init = function(args) n = ((thread_index or 0) * 37) % #reqs end",
              "request = function() n = n % #reqs + 1 return reqs[n] end"]
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


def start_express(work):
    """The seed's Express stack, 2 workers, its own database; its users."""
    peer = os.path.join(work, "peer")
    if not os.path.isdir(peer):
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
    users = {"health": "/api/health", "get": lambda id: f"/api/users/{id}", "ids": ids, "tokens": tokens,
             "login_path": "/api/auth/login", "login_bodies": bodies}
    return express, base, users, lambda: [express.pid] + children(express.pid)


def start_suite(work, binary, extra_env):
    """The suite's launcher on PostgreSQL (fresh databases); its users."""
    for db in ("suite_bench_user", "suite_bench_auth"):
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        psql(f"CREATE DATABASE {db}")
    data = tempfile.mkdtemp(dir=work)
    suite = subprocess.Popen([os.path.abspath(binary)], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={
                                 **os.environ, "SUITE_USER_ADDR": "127.0.0.1:21501", "SUITE_AUTH_ADDR": "127.0.0.1:21502",
                                 "SUITE_GATEWAY_ADDR": "127.0.0.1:21503", "SUITE_DATA_DIR": data,
                                 "SUITE_USER_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/suite_bench_user",
                                 "SUITE_AUTH_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/suite_bench_auth",
                                 "RATE_LIMIT_BURST": "100000000", "RATE_LIMIT_PER_SECOND": "100000000",
                                 "AUTH_RATE_LIMIT_BURST": "100000000", "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
                                 "RUST_LOG": "warn", **extra_env})
    base = "http://127.0.0.1:21503"
    wait_up(base + "/api/health")
    ids, tokens, bodies = register_suite_users(base)
    users = {"health": "/api/health", "get": lambda id: f"/api/v1/users/{id}", "ids": ids, "tokens": tokens,
             "login_path": "/api/v1/auth/login", "login_bodies": bodies}
    return suite, base, users, lambda: [suite.pid]


def start_deployed(work, bin_dir, extra_env):
    """The deployed path: suite-user, suite-auth and suite-gateway as
    separate processes on PostgreSQL (scripts/bench_deployed.py's set-up),
    `extra_env` per service (e.g. REDIS_URL); its users."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_deployed
    os.environ.setdefault("RUST_LOG", "warn")
    suite = bench_deployed.Suite(Path(bin_dir), Path(tempfile.mkdtemp(dir=work)), "postgres://postgres@127.0.0.1:5432",
                                 "vs-express", extra_env)
    suite.start()
    base = bench_deployed.GATEWAY
    ids, tokens, bodies = register_suite_users(base)
    users = {"health": "/api/health", "get": lambda id: f"/api/v1/users/{id}", "ids": ids, "tokens": tokens,
             "login_path": "/api/v1/auth/login", "login_bodies": bodies}
    return suite, base, users, lambda: list(suite.pids().values())


def register_suite_users(base):
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
    return ids, tokens, bodies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--suite", default="target/release/suite")
    ap.add_argument("--rounds", type=int, default=2,
                    help="each stack is measured once a round, in turn (Express, then each suite variant)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME[@BINARY][:K=V,...]",
                    help="a launcher configuration to measure (repeatable; default: 'suite', its defaults),"
                         " e.g. --variant suite --variant no-cache:USER_CACHE=off --variant old@/tmp/old/suite")
    ap.add_argument("--deployed", action="append", default=[], metavar="NAME[@BIN_DIR][:SERVICE.K=V,...]",
                    help="the deployed path (separate suite-user, suite-auth, suite-gateway from --bin-dir) to"
                         " measure (repeatable), e.g. --deployed redis:user.REDIS_URL=redis://127.0.0.1:6379/9,"
                         "gateway.REDIS_URL=redis://127.0.0.1:6379/9")
    ap.add_argument("--bin-dir", default="target/release", help="where suite-user, suite-auth and suite-gateway are")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk")
    variants = []
    for v in args.variant or ["suite"]:
        name, _, env = v.partition(":")
        name, _, binary = name.partition("@")
        variants.append((name, (binary or args.suite, dict(kv.split("=", 1) for kv in env.split(",") if kv))))
    for d in args.deployed:
        name, _, env = d.partition(":")
        name, _, bin_dir = name.partition("@")
        per_service = {}
        for kv in env.split(","):
            if kv:
                key, value = kv.split("=", 1)
                service, _, key = key.partition(".")
                per_service.setdefault(service, {})[key] = value
        variants.append((name, ("deployed", bin_dir or args.bin_dir, per_service)))
    work = tempfile.mkdtemp()
    # name -> one list of rows per round
    results = {"express": []}
    for name, _ in variants:
        results[name] = []
    for _ in range(args.rounds):
        proc, base, users, pids = start_express(work)
        results["express"].append(measure("express", base, users, args.seconds, pids))
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        for name, env in variants:
            if env[0] == "deployed":
                deployed, base, users, pids = start_deployed(work, env[1], env[2])
                results[name].append(measure(name, base, users, args.seconds, pids))
                deployed.stop()
                continue
            proc, base, users, pids = start_suite(work, env[0], env[1])
            results[name].append(measure(name, base, users, args.seconds, pids))
            proc.send_signal(signal.SIGTERM)
            proc.wait()

    names = ["express"] + [n for n, _ in variants]
    print(f"{args.rounds} round(s), {args.seconds} s a measure; req/s (p99 ms) per round; ratio of the means to Express")
    print("| work | " + " | ".join(names) + " | " + " | ".join(f"{n}/express" for n in names[1:]) + " |")
    print("|---" * (len(names) * 2) + "|")
    for row in range(len(results["express"][0])):
        work_name = results["express"][0][row][0]
        cells, means = [], {}
        for n in names:
            per_round = [r[row] for r in results[n]]
            means[n] = sum(p[1] for p in per_round) / len(per_round)
            if work_name == "memory MiB":
                cells.append(" / ".join(f"{p[1]:.0f}" for p in per_round))
            else:
                cells.append(" / ".join(f"{p[1]:,.0f} ({p[2]:.1f}{', %d errors' % p[3] if p[3] else ''})"
                                        for p in per_round))
        ratios = ["" if work_name == "memory MiB" or not means["express"] else f"{means[n] / means['express']:.2f}x"
                  for n in names[1:]]
        print(f"| {work_name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Whatever happened, no server is left running.
        subprocess.run(["pkill", "-P", str(os.getpid())], check=False)
