#!/usr/bin/env python3
"""Reads the sink's directory (scripts/mail/sink.py) with the standard library's email parser.

  python3 scripts/mail/mailbox.py link <dir> <to> <subject-part> <path-part> [<timeout-secs>]
      waits for a mail to <to> whose subject contains <subject-part>, prints the first link in its
      plain-text part whose path contains <path-part>
  python3 scripts/mail/mailbox.py count <dir> <to>
      prints how many mails went to <to>
"""

import email
import email.policy
import re
import sys
import time
from pathlib import Path


def mails(directory: Path):
    for f in sorted(directory.glob("*.eml")):
        yield email.message_from_bytes(f.read_bytes(), policy=email.policy.default)


def to_of(m) -> str:
    return str(m["To"] or "").lower()


def main() -> int:
    verb, directory = sys.argv[1], Path(sys.argv[2])
    if verb == "count":
        to = sys.argv[3].lower()
        print(sum(1 for m in mails(directory) if to in to_of(m)))
        return 0
    to, subject, path = sys.argv[3].lower(), sys.argv[4], sys.argv[5]
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 30
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in reversed(list(mails(directory))):
            if to in to_of(m) and subject in str(m["Subject"] or ""):
                text = m.get_body(preferencelist=("plain",)).get_content()
                for link in re.findall(r"https?://\S+", text):
                    if path in link:
                        print(link)
                        return 0
        time.sleep(0.1)
    print(f"no mail to {to} about {subject!r} with a link to {path} within {timeout}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
