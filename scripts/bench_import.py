#!/usr/bin/env python3
"""How long `suitectl users import` takes for 100,000 users (see BENCHMARKS.md,
"Importing users"), on the launcher's SQLite and on PostgreSQL, and again for
the re-run that skips them all.

The file is JSON lines as the seed's Express + bcrypt stack would export them:
every user with one bcrypt hash (made by Python's bcrypt, an independent
implementation; nothing is hashed at import). The launcher (`target/release/suite`)
runs on SQLite in a temporary directory; PostgreSQL gets two fresh databases
(bench_user, bench_auth). Release binaries are built unless --no-build.

  python3 scripts/bench_import.py [--users 100000] [--no-build] [--postgres URL]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench_deployed  # noqa: E402  (its Suite: the three services on PostgreSQL)

SQLITE_BASE = 20790  # user, auth, gateway, gateway admin


def write_file(path: Path, users: int) -> None:
    import bcrypt  # PyPI's, as scripts/make_import_fixture.py uses (pip install bcrypt)
    # One hash for everyone, at cost 10 (bcryptjs' default in the seed's stack).
    hashed = bcrypt.hashpw(b"correct horse battery staple", bcrypt.gensalt(10)).decode()
    with path.open("w") as f:
        for i in range(users):
            f.write(json.dumps({"username": f"imp{i:07d}", "email": f"imp{i:07d}@example.com",
                                "display_name": f"Imported {i}", "password_hash": hashed,
                                "created_at": "2020-01-01T00:00:00Z"}) + "\n")


def import_once(bins: Path, file: Path, env: dict) -> tuple[float, dict]:
    start = time.monotonic()
    done = subprocess.run([str(bins / "suitectl"), "--output", "json", "users", "import", str(file)],
                          env={**os.environ, **env}, capture_output=True, text=True)
    took = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"suitectl failed ({done.returncode}): {done.stderr[-2000:]}")
    return took, json.loads(done.stdout)


def summary(report: dict) -> str:
    keys = ("created", "skipped", "failed")
    return ", ".join(f"{k} {report.get(k) if not isinstance(report.get(k), list) else len(report[k])}"
                     for k in keys if k in report)


def on_sqlite(bins: Path, file: Path, tmp: Path) -> list[tuple[str, float, str]]:
    data = tmp / "sqlite-data"
    env = {"RATE_LIMIT_PER_SECOND": "100000", "RATE_LIMIT_BURST": "100000", "SUITE_DATA_DIR": str(data),
           "SUITE_USER_ADDR": f"127.0.0.1:{SQLITE_BASE}", "SUITE_AUTH_ADDR": f"127.0.0.1:{SQLITE_BASE + 1}",
           "SUITE_GATEWAY_ADDR": f"127.0.0.1:{SQLITE_BASE + 2}",
           "SUITE_GATEWAY_ADMIN_ADDR": f"127.0.0.1:{SQLITE_BASE + 3}"}
    log = (tmp / "suite.log").open("w")
    suite = subprocess.Popen([str(bins / "suite")], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        bench_deployed.wait_ready(f"http://127.0.0.1:{SQLITE_BASE + 3}/readyz", suite, "the launcher",
                                  tmp / "suite.log")
        ctl = {"USER_SERVICE_URL": f"http://127.0.0.1:{SQLITE_BASE}",
               "AUTH_SERVICE_URL": f"http://127.0.0.1:{SQLITE_BASE + 1}",
               "SIGNING_KEY_FILE": str(data / "auth-signing-key.pem")}
        return [(f"SQLite, {what}", *measure(bins, file, ctl)) for what in ("first run", "re-run")]
    finally:
        suite.terminate()
        suite.wait(timeout=30)


def on_postgres(bins: Path, file: Path, tmp: Path, pg: str) -> list[tuple[str, float, str]]:
    suite = bench_deployed.Suite(bins, tmp, pg, "import")
    suite.start()
    try:
        ctl = {"USER_SERVICE_URL": f"http://{bench_deployed.USER_ADDR}",
               "AUTH_SERVICE_URL": f"http://{bench_deployed.AUTH_ADDR}",
               "SIGNING_KEY_FILE": str(tmp / "data-import" / "auth-signing-key.pem")}
        return [(f"PostgreSQL, {what}", *measure(bins, file, ctl)) for what in ("first run", "re-run")]
    finally:
        suite.stop()


def measure(bins: Path, file: Path, env: dict) -> tuple[float, str]:
    took, report = import_once(bins, file, env)
    return took, summary(report)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    a = ap.parse_args()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--bins"], cwd=ROOT, check=True)
    bins = ROOT / "target/release"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-import-") as t:
        tmp = Path(t)
        file = tmp / "users.jsonl"
        write_file(file, a.users)
        rows += on_sqlite(bins, file, tmp)
        rows += on_postgres(bins, file, tmp, a.postgres)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {a.users:,} users\n")
    print("| commit | store, run | seconds | users/s | result |")
    print("|---|---|---|---|---|")
    for what, took, result in rows:
        print(f"| {commit} | {what} | {took:.1f} | {a.users / took:,.0f} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
