#!/usr/bin/env python3
"""A login storm on ONE account, and what it does to everyone else: the user,
auth and gateway services as separate release processes on PostgreSQL (the
machinery of scripts/bench_deployed.py), loaded from outside by wrk.

One run, side by side (see BENCHMARKS.md, "A login storm on one account"):
  get-alone          a bystander reads its own record (GET /api/v1/users/{id}), 8 connections
  storm-right        32 connections log in to ONE account with its right password
  get-during-right   the bystander's GET (8 connections) during storm-right
  storm-wrong        32 connections send wrong passwords to a second account
  get-during-both    the bystander's GET during storm-right and storm-wrong together
For the storms, every answer's status is counted (200, 401, 429, 5xx), and the
owner logs in once right after each. The gateway's rate limits are raised so
that the services are reached. With --baseline DIR, another build's binaries
are measured first, in the same run.

Usage:
  python3 scripts/bench_contention.py                      # builds target/release first
  python3 scripts/bench_contention.py --baseline DIR       # DIR holds another build's suite-{user,auth,gateway}
Needs: wrk (apt-get install wrk), psql, a PostgreSQL at --postgres (trust auth).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_deployed as bd  # noqa: E402

# Counts every answer by status, per wrk thread, summed at the end.
WRK_LOGIN_ONE_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
request = function()
  local body = '{"login":"' .. os.getenv("BENCH_LOGIN") .. '","password":"' .. os.getenv("BENCH_PASSWORD") .. '"}'
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
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


def parse_storm(out: str) -> dict:
    result = bd.parse_wrk(out)
    line = next((ln for ln in out.splitlines() if ln.startswith("STATUSES ")), "STATUSES {}")
    result["statuses"] = {int(k): v for k, v in json.loads(line[len("STATUSES "):]).items()}
    return result


def storm(tmp: Path, seconds: int, login: str, password: str):
    return (bd.wrk_start(tmp, WRK_LOGIN_ONE_LUA, 32, seconds, {"BENCH_LOGIN": login, "BENCH_PASSWORD": password}),
            parse_storm)


def get(tmp: Path, seconds: int, env: dict):
    return bd.wrk_start(tmp, bd.WRK_PATH_LUA, 8, seconds, env), bd.parse_wrk


def measure(suite: bd.Suite, tmp: Path, seconds: int) -> list[tuple[str, dict]]:
    rows: list[tuple[str, dict]] = []
    meter = bd.Meter(suite.pids())

    def run(names, starts):
        before = meter.snapshot()
        procs = [s() for s in starts]
        for p, _ in procs:
            bd.finish(p)
        cpu = bd.Meter.delta(before, meter.snapshot())
        for name, (p, parse) in zip(names, procs):
            r = parse(p.stdout.read() if p.stdout else "")
            r["cpu"] = cpu
            rows.append((name, r))
            extra = f"  statuses {r['statuses']}" if "statuses" in r else ""
            bd.log(f"  {name:<18} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
                   f"  non-2xx/socket errors {r['errors']}{extra}")

    for name in ("owner", "target", "bystander"):
        status, body = bd.call("POST", "/api/v1/users", {"username": f"storm-{name}",
                                                         "email": f"storm-{name}@example.com",
                                                         "password": bd.PASSWORD})
        if status not in (200, 201):
            sys.exit(f"registration of {name} failed: {status} {body}")
    token = bd.login("storm-bystander")
    reader = {"BENCH_TOKEN": token, "BENCH_PATH": f"/api/v1/users/{bd.subject(token)}"}

    def owner_after(what):
        status, body = bd.call("POST", "/api/v1/auth/login", {"login": "storm-owner", "password": bd.PASSWORD})
        rows.append((f"owner after {what}", {"status": status}))
        bd.log(f"  the owner's login after {what}: {status}")

    run(["get-alone"], [lambda: get(tmp, seconds, reader)])
    run(["storm-right", "get-during-right"],
        [lambda: storm(tmp, seconds, "storm-owner", bd.PASSWORD), lambda: get(tmp, seconds, reader)])
    owner_after("storm-right")
    # The wrong storm's lock must not outlive the measure into the next one.
    run(["storm-right", "storm-wrong", "get-during-both"],
        [lambda: storm(tmp, seconds, "storm-owner", bd.PASSWORD),
         lambda: storm(tmp, seconds, "storm-target", "a-wrong-password-1234"),
         lambda: get(tmp, seconds, reader)])
    owner_after("both storms")
    return rows


def table(rows: list[tuple[str, dict]], label: str) -> str:
    out = [f"| build | measure | req/s | p50 ms | p99 ms | answers |", "|---|---|---|---|---|---|"]
    for name, r in rows:
        if "status" in r:
            out.append(f"| {label} | {name} | | | | {r['status']} |")
            continue
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("statuses", {}).items())) or \
            f"non-2xx or socket errors: {r['errors']}"
        out.append(f"| {label} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {answers} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--baseline", type=Path, help="a directory with another build's suite-{user,auth,gateway}")
    ap.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument("--keep-logs", type=Path, help="copy the services' logs into this directory")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins"], cwd=bd.ROOT, check=True)
    release = bd.ROOT / "target/release"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=bd.ROOT, capture_output=True,
                            text=True).stdout.strip()
    sets = ([(str(a.baseline), a.baseline, "base")] if a.baseline else []) + [(commit, release, "head")]
    out = [f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {a.seconds} s per measure, PostgreSQL"]
    pg_logs = sorted(Path("/var/log/postgresql").glob("postgresql-*-main.log"))
    for label, bins, tag in sets:
        pg_log_start = pg_logs[-1].stat().st_size if pg_logs else 0
        with tempfile.TemporaryDirectory(prefix="bench-contention-") as t:
            tmp = Path(t)
            suite = bd.Suite(bins, tmp, a.postgres, tag)
            bd.log(f"[{label}] starting user, auth and gateway from {bins}")
            suite.start()
            try:
                rows = measure(suite, tmp, a.seconds)
            finally:
                suite.stop()
                deadlocks = [ln for f in tmp.glob(f"{tag}-*.log") for ln in f.read_text(errors="replace").splitlines()
                             if "deadlock" in ln.lower() or "pool timed out" in ln.lower()]
                if a.keep_logs:
                    a.keep_logs.mkdir(parents=True, exist_ok=True)
                    for f in tmp.glob(f"{tag}-*.log"):
                        shutil.copy(f, a.keep_logs / f.name)
        pg_deadlocks = "unknown (no PostgreSQL log under /var/log/postgresql)"
        if pg_logs:
            with pg_logs[-1].open("rb") as f:
                f.seek(pg_log_start)
                pg_deadlocks = str(f.read().decode(errors="replace").count("deadlock detected"))
        out.append(table(rows, label))
        out.append(f"service log lines naming a deadlock or a pool timeout: {len(deadlocks)}; "
                   f"deadlocks in PostgreSQL's log: {pg_deadlocks}")
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
