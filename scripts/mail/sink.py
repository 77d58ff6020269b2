#!/usr/bin/env python3
"""An SMTP sink (aiosmtpd, an independent SMTP server): every message it accepts is written as
<dir>/<n>.eml, atomically. Runs until killed.

  python3 scripts/mail/sink.py <port> <dir>
"""

import asyncio
import os
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        name = f"{time.time_ns()}-{os.getpid()}.eml"
        partial = self.directory / f".{name}.partial"
        partial.write_bytes(envelope.original_content or envelope.content)
        partial.rename(self.directory / name)
        return "250 OK"


def main() -> None:
    port, directory = int(sys.argv[1]), Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(Keep(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
