#!/usr/bin/env python3
"""Checks the configuration reference (docs/src/operators/configuration.md) against the binaries.

Each built binary's `--help` lists the environment variables it reads (`[env: NAME=…]`) and their
defaults (`[default: …]`). The reference must document exactly those, per binary, with the same
defaults, so that it cannot drift from the code:

  python3 scripts/config_reference.py --check [--bin-dir target/debug] [--build-missing]
  python3 scripts/config_reference.py --list   # what each binary's --help says, as the script reads it

The reference marks each table with the binaries that read it (`<!-- config: suite-user suite-auth -->`
before the table); a table after `<!-- config-outside-help -->` holds variables read outside the
command line (logs, telemetry, the runtime, tests), which must be read somewhere in the tree or by a
dependency named below.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "src" / "operators" / "configuration.md"
# The binaries whose --help is the source of truth. Where a binary is built does not matter here:
# only its name, looked up in --bin-dir.
BINARIES = ["suite-user", "suite-auth", "suite-gateway", "suite", "suitectl"]
# Variables read by a dependency rather than by our own code, so no file of ours names them.
READ_BY_DEPENDENCY = {
    "OTEL_": "the OpenTelemetry SDK (opentelemetry_sdk, opentelemetry-otlp)",
    "TOKIO_WORKER_THREADS": "tokio's runtime builder",
}

ENV_RE = re.compile(r"\[env: ([A-Z][A-Z0-9_]*)")
DEFAULT_RE = re.compile(r"\[default: ([^\]]*)\]")
# An option block starts at a line such as `  -h, --help` or `      --listen-addr <LISTEN_ADDR>`.
OPTION_RE = re.compile(r"^\s{2,}(?:-\w, )?--[a-z0-9-]+")
VAR_RE = re.compile(r"`([A-Z][A-Z0-9_]{2,})`")
MARK_RE = re.compile(r"^<!--\s*(config-outside-help|config:([^>]*?))\s*-->\s*$")


def help_variables(binary: Path) -> dict[str, str | None]:
    """The variables `binary --help` names, each with its default (None: no default)."""
    out = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    blocks: list[list[str]] = []
    for line in out.splitlines():
        if OPTION_RE.match(line):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    found: dict[str, str | None] = {}
    for block in blocks:
        text = "\n".join(block)
        env = ENV_RE.search(text)
        if env:
            default = DEFAULT_RE.search(text)
            found[env.group(1)] = default.group(1) if default else None
    return found


def table_rows(lines: list[str]):
    """The rows of the table that starts at lines[0] (header and rule skipped)."""
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(cells)
    return rows[2:]


def reference_sections(text: str):
    """(binaries or None for outside-help, rows) for every marked table of the reference."""
    lines = text.splitlines()
    sections = []
    for i, line in enumerate(lines):
        mark = MARK_RE.search(line)
        if not mark:
            continue
        binaries = None if mark.group(1) == "config-outside-help" else mark.group(2).split()
        start = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("|")), None)
        if start is None:
            raise SystemExit(f"{REFERENCE}: the mark on line {i + 1} is followed by no table")
        sections.append((i + 1, binaries, table_rows(lines[start:])))
    return sections


def row_variables(cells: list[str]) -> list[str]:
    """The variables a row documents: the backticked names of its first cell, `(or …)` aside."""
    first = re.sub(r"\(or [^)]*\)", "", cells[0])
    return VAR_RE.findall(first)


def row_defaults(cells: list[str], count: int) -> list[str] | None:
    """The row's defaults, one per variable, when the default cell lists them that way."""
    cell = cells[1] if len(cells) > 1 else ""
    parts = [p.strip() for p in cell.split(", ")] if count > 1 else [cell.strip()]
    return parts if len(parts) == count else None


def read_in_tree(name: str) -> bool:
    """Whether a file of the tree other than the docs names the variable."""
    found = subprocess.run(
        ["git", "grep", "-q", "-w", name, "--", ".", ":!docs", ":!README.md", ":!*.md"],
        cwd=ROOT,
    )
    return found.returncode == 0


def build_missing(bin_dir: Path) -> None:
    """Builds each binary not yet in bin_dir, from whichever workspace package holds it.

    Only the missing ones: CI's earlier steps have built the others with the features they need, and
    building them again with another package selection would compile the workspace once more.
    """
    missing = [name for name in BINARIES if not (bin_dir / name).exists()]
    if not missing:
        return
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--locked"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )
    for name in missing:
        package = next(
            (
                p["name"]
                for p in metadata["packages"]
                for t in p["targets"]
                if t["name"] == name and "bin" in t["kind"]
            ),
            None,
        )
        if package is None:
            raise SystemExit(f"no package of the workspace has a binary named {name}")
        subprocess.run(["cargo", "build", "--locked", "-p", package, "--bin", name], cwd=ROOT, check=True)


def check(bin_dir: Path) -> int:
    text = REFERENCE.read_text(encoding="utf-8")
    helps = {}
    for name in BINARIES:
        binary = bin_dir / name
        if not binary.exists():
            print(f"missing binary {binary}: build it first, or pass --build-missing")
            return 2
        helps[name] = help_variables(binary)

    problems = []
    documented: dict[str, dict[str, list[str]]] = {name: {} for name in BINARIES}
    for line_no, binaries, rows in reference_sections(text):
        for cells in rows:
            names = row_variables(cells)
            if not names:
                problems.append(f"{REFERENCE.name}:{line_no}: a row names no variable: {cells[0]!r}")
                continue
            if binaries is None:
                for var in names:
                    if any(var in h for h in helps.values()):
                        problems.append(
                            f"{var} is documented as read outside --help, but a binary's --help lists it"
                        )
                    dependency = next(
                        (who for key, who in READ_BY_DEPENDENCY.items() if var.startswith(key)), None
                    )
                    if dependency is None and not read_in_tree(var):
                        problems.append(f"{var} is documented, but nothing in the tree reads it")
                continue
            defaults = row_defaults(cells, len(names))
            for binary in binaries:
                if binary not in helps:
                    problems.append(f"{REFERENCE.name}:{line_no}: unknown binary {binary!r}")
                    continue
                for k, var in enumerate(names):
                    documented[binary].setdefault(var, []).append(defaults[k] if defaults else "")

    for binary, variables in helps.items():
        for var, default in variables.items():
            if var not in documented[binary]:
                problems.append(f"{binary} reads {var} (--help), but the reference does not document it for {binary}")
                continue
            if default is not None:
                cells = documented[binary][var]
                if not any(f"`{default}`" in cell for cell in cells):
                    problems.append(
                        f"{binary}: {var} defaults to {default!r} (--help), the reference says {cells}"
                    )
        for var in documented[binary]:
            if var not in variables:
                problems.append(f"the reference documents {var} for {binary}, whose --help does not list it")

    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {REFERENCE.relative_to(ROOT)}")
        return 1
    total = sum(len(v) for v in helps.values())
    print(f"configuration reference: {total} variables of {len(helps)} binaries documented, defaults agree")
    return 0


def list_helps(bin_dir: Path) -> int:
    for name in BINARIES:
        print(f"## {name}")
        for var, default in help_variables(bin_dir / name).items():
            print(f"{var}\t{default if default is not None else '(none)'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="fail when the reference and --help differ")
    mode.add_argument("--list", action="store_true", help="print each binary's variables and defaults")
    parser.add_argument("--bin-dir", default=str(ROOT / "target" / "debug"), type=Path)
    parser.add_argument(
        "--build-missing", action="store_true", help="cargo build the binaries not in --bin-dir first"
    )
    args = parser.parse_args()
    if args.build_missing:
        build_missing(args.bin_dir)
    return check(args.bin_dir) if args.check else list_helps(args.bin_dir)


if __name__ == "__main__":
    sys.exit(main())
