#!/usr/bin/env python3
"""Seeds users straight into the user service's PostgreSQL database, for
benchmarks at a realistic size (a million users in about a minute).

Every seeded user has the same password hash (one precomputed argon2id PHC
string: seeding must not spend an hour hashing), username `seed<N>` (seven
digits), email `seed<N>@example.com`, role `user`. Users that exist already
(same name or email) are left alone, so the script can top a table up.
No events are written for seeded users: they never happened.

Usage:
  python3 scripts/seed_users.py --database-url postgres://postgres@127.0.0.1:5432/user \\
      --count 1000000 --hash "$(psql ... -Atc "SELECT password_hash FROM users LIMIT 1")"
Needs: psql on the PATH.
"""

import argparse
import subprocess
import sys
import time

BATCH = 100_000


def psql(url: str, sql: str, *args: str) -> str:
    out = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", *args, "-c", sql],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True, help="the user service's PostgreSQL database")
    ap.add_argument("--count", type=int, required=True, help="seed users seed0000001 .. seed<count>")
    ap.add_argument("--start", type=int, default=1, help="the first number (default 1)")
    ap.add_argument("--hash", required=True, help="the argon2id PHC string every seeded user gets")
    a = ap.parse_args()
    if not a.hash.startswith("$argon2"):
        print("--hash must be an argon2 PHC string ($argon2id$...)", file=sys.stderr)
        return 2
    started = time.monotonic()
    end = a.start + a.count - 1
    for first in range(a.start, end + 1, BATCH):
        last = min(first + BATCH - 1, end)
        # The hash goes in as a psql variable (:'hash' quotes it), never spliced.
        sql = f"""
            INSERT INTO users (id, username, email, display_name, roles, password_hash,
                               created_at, updated_at, version)
            SELECT gen_random_uuid(), 'seed' || lpad(i::text, 7, '0'),
                   'seed' || lpad(i::text, 7, '0') || '@example.com', '', ARRAY['user'],
                   :'hash', now(), now(), 1
            FROM generate_series({first}, {last}) AS i
            ON CONFLICT DO NOTHING"""
        subprocess.run(
            ["psql", a.database_url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-v", f"hash={a.hash}"],
            input=sql, check=True, text=True)
        print(f"  seeded up to seed{last:07d} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    psql(a.database_url, "VACUUM ANALYZE users")
    total = psql(a.database_url, "SELECT count(*) FROM users WHERE deleted_at IS NULL")
    print(f"{total} live users ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
