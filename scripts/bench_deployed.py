#!/usr/bin/env python3
"""The deployed path, measured as users run it: the user, auth and gateway
services as separate release processes on PostgreSQL, loaded from outside
by wrk (Debian's package), everything on this machine's cores.

One run, side by side (see BENCHMARKS.md, "The deployed path"):
  health            GET /api/health (the ceiling: HTTP alone)
  get-1-token       authenticated GET /api/v1/users/{id}, one token
  get-100-tokens    the same with 100 users' tokens in turn
  grpc-direct       UserService.GetUser straight to the user service (examples/grpc_load, 100 tokens)
  login             POST /api/v1/auth/login, 100 users in turn, 16 connections
  get-during-logins get-100-tokens (8 connections) while the login load runs
and with --million, after seeding a million users: get and login again,
ListUsers' first page and a page 10,000 users deep, and the query plans of
login by username and by email.

For each: req/s, p50/p99, errors, CPU seconds per request of every process
(gateway, user, auth, PostgreSQL, the generator), and the services'
resident memory idle, after the GET runs, after the login storm and after an
idle spell that follows it. First, with nothing else running, the argon2id
bound: password verifications per second on every core (examples/argon2_bound).
With PostgreSQL's server log readable (--statement-log, found by itself on
Debian), also the statements (round trips) a GET, a list and a login send to
each database, counted in that log.

Usage:
  python3 scripts/bench_deployed.py                       # 10 s per measure, 32 connections, 1,000 users
  python3 scripts/bench_deployed.py --million             # then a million users
  python3 scripts/bench_deployed.py --baseline DIR        # also DIR's binaries (another commit), same run
  python3 scripts/bench_deployed.py --one-worker          # also with one tokio worker thread per service
Needs: wrk (apt-get install wrk), psql, a PostgreSQL at --postgres (trust auth).
It builds the release binaries, examples/grpc_load and examples/argon2_bound itself
(cargo build --release).
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-Horse-Battery-42"
# Below the ephemeral port range; not used by .ci/run's other scripts.
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "20800"))
USER_ADDR, AUTH_ADDR = f"127.0.0.1:{PORT_BASE}", f"127.0.0.1:{PORT_BASE + 1}"
GATEWAY_ADDR, GATEWAY_ADMIN = f"127.0.0.1:{PORT_BASE + 2}", f"127.0.0.1:{PORT_BASE + 3}"
USER_ADMIN, AUTH_ADMIN = f"127.0.0.1:{PORT_BASE + 4}", f"127.0.0.1:{PORT_BASE + 5}"
GATEWAY = f"http://{GATEWAY_ADDR}"
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- processes and /proc ----------------------------------------------------

def cpu_seconds(pid: int) -> float:
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(rest[11]) + int(rest[12])) / HZ  # utime + stime


def rss_mib(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except (FileNotFoundError, ProcessLookupError):
        return float("nan")


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (postmaster, backends, workers)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if p.joinpath("comm").read_text().strip().startswith("postgres"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


class Meter:
    """CPU seconds of the services, PostgreSQL and a generator over a window."""

    def __init__(self, services: dict[str, int]):
        self.services = services

    def snapshot(self) -> dict[str, float]:
        s = {name: cpu_seconds(pid) for name, pid in self.services.items()}
        # Backends come and go: this sums the live ones (the pools keep theirs).
        s["postgres"] = sum(cpu_seconds(p) for p in postgres_pids())
        return s

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, float]:
        return {k: after[k] - before.get(k, 0.0) for k in after}


def statements_per_call(suite, server_log: Path, calls: dict[str, callable], n: int = 50) -> dict[str, dict[str, float]]:
    """Statements each call sends to each database, from PostgreSQL's own log
    (log_statement = all, for this alone): `n` calls one after another, less
    the outbox relays' polls, which run whatever the calls do."""
    pg = f"{suite.pg}/postgres"
    counts = {}
    for what, call_once in calls.items():
        start = server_log.stat().st_size
        suite.psql(pg, "ALTER SYSTEM SET log_statement = 'all'")
        suite.psql(pg, "SELECT pg_reload_conf()")
        time.sleep(0.5)
        for _ in range(n):
            call_once()
        suite.psql(pg, "ALTER SYSTEM RESET log_statement")
        suite.psql(pg, "SELECT pg_reload_conf()")
        with server_log.open("rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
        per_db: dict[str, float] = {}
        for db in ("bench_user", "bench_auth"):
            mine = [ln for ln in lines if f"@{db} LOG:" in ln and ("statement:" in ln or "execute " in ln)]
            mine = [ln for ln in mine if "FROM outbox ORDER BY seq" not in ln]
            per_db[db] = len(mine) / n
        counts[what] = per_db
        log_line = "  ".join(f"{db}: {k:.2f}" for db, k in per_db.items())
        log(f"  statements per {what:<18} {log_line}")
    return counts


def finish(proc: subprocess.Popen) -> float:
    """Waits for a generator to end; its CPU seconds, read before it is reaped."""
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    cpu = cpu_seconds(proc.pid)
    proc.wait()
    return cpu


def wait_ready(url: str, proc: subprocess.Popen, what: str, log_path: Path, limit: float = 60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not become ready at {url}; its log:\n{log_path.read_text()[-4000:]}")


# --- HTTP helpers -------------------------------------------------------------

def call(method: str, path: str, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(GATEWAY + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def login(name: str) -> str:
    status, body = call("POST", "/api/v1/auth/login", {"login": name, "password": PASSWORD})
    if status != 200:
        sys.exit(f"login of {name} failed: {status} {body}")
    return body["accessToken"]


def subject(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


# --- wrk ----------------------------------------------------------------------

WRK_TOKENS_LUA = """
local lines = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  local token, id = line:match("^(%S+) (%S+)$")
  lines[#lines + 1] = { "Bearer " .. token, "/api/v1/users/" .. id }
end
local turn = math.random(#lines)
request = function()
  turn = turn % #lines + 1
  local l = lines[turn]
  return wrk.format("GET", l[2], { ["Authorization"] = l[1] })
end
"""

WRK_LOGIN_LUA = """
-- Each wrk thread starts at its own place in the list (math.random is
-- seeded alike in every thread): threads in step would send the same
-- account's login at once, which the user service answers with one
-- check, and the storm would not be one over many accounts.
local threads = 0
function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end
local names = {}
for line in io.lines(os.getenv("BENCH_LOGINS")) do names[#names + 1] = line end
local turn = 0
init = function(args)
  turn = ((thread_index or 0) * 37) % #names
end
request = function()
  turn = turn % #names + 1
  local body = '{"login":"' .. names[turn] .. '","password":"' .. os.getenv("BENCH_PASSWORD") .. '"}'
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end
"""

WRK_PATH_LUA = """
request = function()
  return wrk.format("GET", os.getenv("BENCH_PATH"), { ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") })
end
"""


def to_ms(v: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return float("nan")
    n, unit = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    def grab(pattern, default="0"):
        m = re.search(pattern, out)
        return m.group(1) if m else default

    requests = int(grab(r"(\d+) requests in"))
    non2xx = int(grab(r"Non-2xx or 3xx responses: (\d+)"))
    socket = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", grab(r"Socket errors: (.*)", "")))
    return {
        "requests": requests,
        "errors": non2xx + socket,
        "rps": float(grab(r"Requests/sec:\s+([\d.]+)")),
        "p50_ms": to_ms(grab(r"\s50%\s+(\S+)", "nan")),
        "p99_ms": to_ms(grab(r"\s99%\s+(\S+)", "nan")),
    }


def wrk_start(tmp: Path, script: str, connections: int, seconds: int, env: dict, path: str = "/") -> subprocess.Popen:
    lua = tmp / f"wrk-{abs(hash(script))}.lua"
    lua.write_text(script)
    threads = max(1, min(2, connections))
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), GATEWAY + path],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})


# --- the suite ------------------------------------------------------------------

class Suite:
    def __init__(self, bins: Path, tmp: Path, pg: str, tag: str, extra_env: dict[str, dict[str, str]] | None = None):
        self.bins, self.tmp, self.pg, self.tag = bins, tmp, pg, tag
        self.extra_env = extra_env or {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.user_db, self.auth_db = f"{pg}/bench_user", f"{pg}/bench_auth"

    def psql(self, db: str, sql: str) -> str:
        return subprocess.run(["psql", db, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              check=True, capture_output=True, text=True).stdout.strip()

    def start(self):
        for db in ("bench_user", "bench_auth"):
            self.psql(f"{self.pg}/postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            self.psql(f"{self.pg}/postgres", f"CREATE DATABASE {db}")
        data = self.tmp / f"data-{self.tag}"
        data.mkdir(exist_ok=True)
        common = {"PATH": os.environ.get("PATH", ""), "FORWARDING_SECRET": "bench-forwarding-secret-0123456789",
                  "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        envs = {
            "auth": {"LISTEN_ADDR": AUTH_ADDR, "ADMIN_ADDR": AUTH_ADMIN, "DATABASE_URL": self.auth_db,
                     "DATA_DIR": str(data), "USER_SERVICE_URL": f"http://{USER_ADDR}"},
            "user": {"LISTEN_ADDR": USER_ADDR, "ADMIN_ADDR": USER_ADMIN, "DATABASE_URL": self.user_db,
                     "JWKS": f"grpc://{AUTH_ADDR}"},
            "gateway": {"LISTEN_ADDR": GATEWAY_ADDR, "ADMIN_ADDR": GATEWAY_ADMIN,
                        "USER_SERVICE_URL": f"http://{USER_ADDR}", "AUTH_SERVICE_URL": f"http://{AUTH_ADDR}",
                        # The benchmark's one client would be rate-limited at once otherwise.
                        "RATE_LIMIT_PER_SECOND": "10000000", "RATE_LIMIT_BURST": "10000000",
                        "AUTH_RATE_LIMIT_PER_MINUTE": "100000000", "AUTH_RATE_LIMIT_BURST": "10000000"},
        }
        for name in ("auth", "user", "gateway"):
            log_path = self.tmp / f"{self.tag}-{name}.log"
            self.procs[name] = subprocess.Popen([str(self.bins / f"suite-{name}")], env={**common, **envs[name], **self.extra_env.get(name, {})},
                                                stdout=log_path.open("w"), stderr=subprocess.STDOUT)
        # The services' readiness is their gRPC health, which the gateway's
        # /readyz asks (SERVING from both); their admin ports answer /livez.
        for name, url in (("auth", f"http://{AUTH_ADMIN}/livez"), ("user", f"http://{USER_ADMIN}/livez"),
                          ("gateway", f"http://{GATEWAY_ADMIN}/readyz")):
            wait_ready(url, self.procs[name], name, self.tmp / f"{self.tag}-{name}.log")

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def rss(self) -> dict[str, float]:
        return {name: rss_mib(p.pid) for name, p in self.procs.items()}

    def stop(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


# --- the measures ---------------------------------------------------------------

class Run:
    def __init__(self, args, suite: Suite, tmp: Path, grpc_load: Path):
        self.a, self.suite, self.tmp, self.grpc_load = args, suite, tmp, grpc_load
        self.meter = Meter(suite.pids())
        self.rows: list[tuple[str, dict]] = []
        self.memory: dict[str, dict[str, float]] = {}

    def measure(self, name: str, start, connections: int):
        """Runs one load (`start` returns a Popen whose output `parse` reads)."""
        return self.concurrently([name], [start], [connections])[0]

    def wrk(self, name, script, connections, env, path="/"):
        return self.measure(name, lambda: (wrk_start(self.tmp, script, connections, self.a.seconds, env, path),
                                           parse_wrk), connections)

    def grpc(self, name, connections, tokens_file):
        def start():
            p = subprocess.Popen([str(self.grpc_load), f"http://{USER_ADDR}", str(self.a.seconds), str(connections),
                                  str(tokens_file)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            return p, lambda out: json.loads(out.strip().splitlines()[-1])
        return self.measure(name, start, connections)

    def concurrently(self, names, starts, connections):
        """Loads at once; the CPU and transactions per request are over all
        their requests together."""
        before = self.meter.snapshot()
        procs = [s() for s in starts]
        gen = [finish(p) for p, _ in procs]
        after = self.meter.snapshot()
        cpu = Meter.delta(before, after)
        cpu["generator"] = sum(gen)
        results = []
        for name, (p, parse), conns in zip(names, procs, connections):
            result = parse(p.stdout.read() if p.stdout else "")
            result["cpu"] = cpu
            result["connections"] = conns
            result["shared_cpu"] = len(names) > 1
            self.rows.append((name, result))
            results.append(result)
            log(f"  {name:<22} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                f"  errors {result['errors']}")
        return results

    def seed(self, count: int, start: int):
        subprocess.run([sys.executable, str(ROOT / "scripts/seed_users.py"), "--database-url", self.suite.user_db,
                        "--count", str(count), "--start", str(start), "--hash", self.hash], check=True)

    def run(self):
        a, tmp = self.a, self.tmp
        self.memory["idle (started)"] = self.suite.rss()
        # One user registered through the API: its hash (the service's own
        # parameters) is the one every seeded user gets.
        status, body = call("POST", "/api/v1/users", {"username": "bench-first", "email": "bench-first@example.com",
                                                      "password": PASSWORD})
        if status not in (200, 201):
            sys.exit(f"registration failed: {status} {body}")
        self.hash = self.suite.psql(self.suite.user_db, "SELECT password_hash FROM users WHERE username = 'bench-first'")
        self.seed(a.users, 1)
        log(f"[{self.suite.tag}] logging in 100 users")
        names = [f"seed{i:07d}" for i in range(1, 101)]
        tokens = [login(n) for n in names]
        tokens_file = tmp / "tokens.txt"
        tokens_file.write_text("".join(f"{t} {subject(t)}\n" for t in tokens))
        (tmp / "logins.txt").write_text("\n".join(names) + "\n")
        one = {"BENCH_TOKEN": tokens[0], "BENCH_PATH": f"/api/v1/users/{subject(tokens[0])}"}
        many = {"BENCH_TOKENS": str(tokens_file)}
        logins = {"BENCH_LOGINS": str(tmp / "logins.txt"), "BENCH_PASSWORD": PASSWORD}
        self.memory["idle (after 101 logins)"] = self.suite.rss()
        if a.statement_log:
            path = one["BENCH_PATH"]
            self.statements = statements_per_call(self.suite, a.statement_log, {
                "GET a user": lambda: call("GET", path, token=tokens[0]),
                "ListUsers page": lambda: call("GET", "/api/v1/users?pageSize=50", token=tokens[0]),
                "login": lambda: login(names[0]),
            })

        c = a.connections
        log(f"[{self.suite.tag}] measuring, {a.seconds} s each, {c} connections")
        self.wrk("health", "", c, {}, "/api/health")
        self.wrk("get-1-token", WRK_PATH_LUA, c, one)
        self.wrk("get-100-tokens", WRK_TOKENS_LUA, c, many)
        self.grpc("grpc-direct", c, tokens_file)
        self.memory["after GETs"] = self.suite.rss()
        self.wrk("login", WRK_LOGIN_LUA, 16, logins)
        self.concurrently(
            ["logins-with-gets", "get-during-logins"],
            [lambda: (wrk_start(tmp, WRK_LOGIN_LUA, 16, a.seconds, logins), parse_wrk),
             lambda: (wrk_start(tmp, WRK_TOKENS_LUA, 8, a.seconds, many), parse_wrk)], [16, 8])
        self.memory["after logins"] = self.suite.rss()
        # The hashing threads give their buffers back after 10 s without work.
        time.sleep(15)
        self.memory["15 s after logins"] = self.suite.rss()

        # The million users are for this build only (the baseline is for the ratios).
        if a.million and self.suite.tag == "head":
            log(f"[{self.suite.tag}] seeding up to 1,000,000 users")
            self.seed(1_000_000 - a.users, a.users + 1)
            self.wrk("1M get-100-tokens", WRK_TOKENS_LUA, c, many)
            self.wrk("1M login", WRK_LOGIN_LUA, 16, logins)
            first = {"BENCH_TOKEN": tokens[0], "BENCH_PATH": "/api/v1/users?pageSize=50"}
            # The latency of one call (one connection), then under load.
            self.wrk("1M list first page", WRK_PATH_LUA, 1, first)
            self.wrk("1M list first page", WRK_PATH_LUA, c, first)
            page_token, depth = "", 0
            while depth < 10_000:
                status, body = call("GET", f"/api/v1/users?pageSize=100&pageToken={page_token}", token=tokens[0])
                if status != 200:
                    sys.exit(f"listing failed at depth {depth}: {status} {body}")
                page_token, depth = body["nextPageToken"], depth + len(body["users"])
            deep = {"BENCH_TOKEN": tokens[0], "BENCH_PATH": f"/api/v1/users?pageSize=50&pageToken={page_token}"}
            self.wrk("1M list 10,000 deep", WRK_PATH_LUA, 1, deep)
            self.wrk("1M list 10,000 deep", WRK_PATH_LUA, c, deep)
            self.plans = {
                what: self.suite.psql(self.suite.user_db, f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}")
                for what, sql in PLANS.items()}
            status, body = call("GET", "/api/v1/users?pageSize=1", token=tokens[0])
            self.total_size = body.get("totalSize")


# The store's login query (services/user/src/store/postgres.rs, find_by_login).
LOGIN_SQL = ("SELECT id, username, email, display_name, roles, password_hash, created_at, updated_at, version, "
             "sessions_valid_after FROM users WHERE (lower(email) = '{0}' OR lower(username) = '{0}') "
             "AND deleted_at IS NULL LIMIT 1")
PLANS = {"login by username": LOGIN_SQL.format("seed0500000"),
         "login by email": LOGIN_SQL.format("seed0500000@example.com")}


def table(run: Run, commit: str, label: str) -> str:
    keys = ["gateway", "user", "auth", "postgres", "generator"]
    head = ("| commit | measure | conns | req/s | p50 ms | p99 ms | errors | "
            + " | ".join(f"{k} µs" for k in keys) + " | all µs |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in run.rows:
        # Loads run together share one CPU reading: per request of both.
        n = r["requests"] if not r.get("shared_cpu") else sum(
            x["requests"] for nm, x in run.rows if x.get("shared_cpu") and x["cpu"] is r["cpu"])
        us = [r["cpu"].get(k, 0.0) / n * 1e6 if n else float("nan") for k in keys]
        lines.append(f"| {commit} {label} | {name} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['errors']} | " + " | ".join(f"{u:.0f}" for u in us)
                     + f" | {sum(us[:4]):.0f} |")
    lines.append("")
    lines.append("| commit | resident MiB | gateway | user | auth |")
    lines.append("|---|---|---|---|---|")
    for when, m in run.memory.items():
        lines.append(f"| {commit} {label} | {when} | {m['gateway']:.1f} | {m['user']:.1f} | {m['auth']:.1f} |")
    if getattr(run, "statements", None):
        lines.append("")
        lines.append("| commit | statements per call | user database | auth database |")
        lines.append("|---|---|---|---|")
        for what, per_db in run.statements.items():
            lines.append(f"| {commit} {label} | {what} | {per_db['bench_user']:.2f} | {per_db['bench_auth']:.2f} |")
    if getattr(run, "plans", None):
        lines.append("")
        lines.append(f"ListUsers totalSize at a million: {run.total_size}")
        for what, plan in run.plans.items():
            lines.append("")
            lines.append(f"{what}:")
            lines.append("```")
            lines.append(plan)
            lines.append("```")
    return "\n".join(lines)


def build() -> Path:
    log("building release binaries, examples/grpc_load and examples/argon2_bound")
    subprocess.run(["cargo", "build", "--release", "--workspace", "--bins", "--example", "grpc_load",
                    "--example", "argon2_bound"], cwd=ROOT, check=True)
    return ROOT / "target/release"


def argon2_bound(examples: Path, seconds: int) -> dict:
    log("measuring the argon2id bound (verifications on every core, nothing else running)")
    out = subprocess.run([str(examples / "argon2_bound"), str(seconds)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--users", type=int, default=1000, help="users seeded before the measures (at least 100)")
    ap.add_argument("--million", action="store_true", help="then seed up to a million users and measure again")
    ap.add_argument("--baseline", type=Path, help="a directory with another build's suite-{user,auth,gateway}, run first")
    ap.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument("--bin-dir", type=Path, help="run these binaries instead of target/release's (with --no-build)")
    logs = sorted(Path("/var/log/postgresql").glob("postgresql-*-main.log"))
    ap.add_argument("--statement-log", type=Path, default=logs[-1] if logs else None,
                    help="PostgreSQL's server log, to count each call's statements (default: Debian's, if any)")
    ap.add_argument("--no-statements", action="store_true", help="do not count statements")
    ap.add_argument("--one-worker", action="store_true",
                    help="then this build again with TOKIO_WORKER_THREADS=1 in every service")
    ap.add_argument("--env", action="append", default=[], metavar="SERVICE:NAME=VALUE",
                    help="an environment variable for one service (user, auth or gateway) in every set; repeatable")
    a = ap.parse_args()
    if a.no_statements:
        a.statement_log = None
    if a.users < 100:
        sys.exit("--users must be at least 100")
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if a.no_build:
        release = a.bin_dir or ROOT / "target/release"
    else:
        release = build()
    examples = ROOT / "target/release/examples"
    grpc_load = examples / "grpc_load"
    bound = argon2_bound(examples, a.seconds)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    commit += "+" if dirty else ""
    extra_env: dict[str, dict[str, str]] = {}
    for e in a.env:
        service, _, assignment = e.partition(":")
        name, eq, value = assignment.partition("=")
        if service not in ("user", "auth", "gateway") or not eq:
            sys.exit(f"--env {e}: expected SERVICE:NAME=VALUE with SERVICE user, auth or gateway")
        extra_env.setdefault(service, {})[name] = value
    one_worker = {svc: {"TOKIO_WORKER_THREADS": "1"} for svc in ("user", "auth", "gateway")}
    # (label in the table, binaries, tag, environment of each service)
    sets = ([(str(a.baseline), a.baseline, "base", extra_env)] if a.baseline else []) + [(commit, release, "head", extra_env)]
    if a.one_worker:
        merged = {svc: {**extra_env.get(svc, {}), **one_worker[svc]} for svc in one_worker}
        sets.append((f"{commit} 1 worker", release, "one-worker", merged))
    out = [f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {a.seconds} s per measure; argon2id bound: "
           f"{bound['per_second']:.1f} verifications/s on {bound['threads']} threads"]
    for label, bins, tag, env in sets:
        with tempfile.TemporaryDirectory(prefix="bench-deployed-") as t:
            tmp = Path(t)
            suite = Suite(bins, tmp, a.postgres, tag, env)
            log(f"[{label}] starting user, auth and gateway from {bins}")
            suite.start()
            try:
                run = Run(a, suite, tmp, grpc_load)
                run.run()
            finally:
                suite.stop()
        out.append(table(run, label, ""))
        logins = next(r for n, r in run.rows if n == "login")
        out.append(f"logins: {logins['rps'] / bound['per_second']:.0%} of the argon2id bound")
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
