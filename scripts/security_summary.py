"""Print the security-check table of a verification run (scripts/setup-secure-redis.sh step 6).

    python scripts/security_summary.py SUMMARY.json

SUMMARY.json is what `pytest tests/e2e --e2e-summary FILE` writes (tests/e2e/conftest.py):
{"areas": [{"title", "passed", "failed", "skipped", "failures": [test ids]}]}. A missing or
unreadable file means the verification did not run to the end, which is said, not raised.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from infra.cli import exit_with
from secure_cache.cli_parser import say


def load_areas(path: Path) -> list[dict[str, Any]]:
    """The summary's rows; [] when the file is missing, unreadable or not a summary."""
    if not path.is_file():  # a FIFO or a device would block or never end; a directory fails
        return []
    try:
        areas = json.loads(path.read_text(encoding="utf-8"))["areas"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    return [a for a in areas if isinstance(a, dict)] if isinstance(areas, list) else []


def verdict(area: dict[str, Any]) -> str:
    """PASS when something passed and nothing failed, FAIL on any failure, else SKIP."""
    if area["failed"]:
        return "FAIL"
    return "PASS" if area["passed"] > 0 else "SKIP"


def render(areas: Sequence[dict[str, Any]]) -> list[str]:
    if not areas:
        return ["security checks: no results (the verification did not run to the end)"]
    width = max(len(a["title"]) for a in areas)
    lines = [f"{'security check'.ljust(width)}  result"]
    for area in areas:
        counts = f"{area['passed']} passed"
        if area["failed"]:
            counts += f", {area['failed']} failed"
        if area["skipped"]:
            counts += f", {area['skipped']} skipped"
        lines.append(f"{area['title'].ljust(width)}  {verdict(area)} ({counts})")
        lines.extend(f"    failed: {test}" for test in area.get("failures", ()))
    return lines


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python scripts/security_summary.py SUMMARY.json", file=sys.stderr)
        return 2
    try:
        areas = load_areas(Path(args[0]))
        rows = render(areas)
    except (KeyError, TypeError):  # rows without the documented fields
        rows = render([])
    say("\n".join(rows), file=out)
    return 0


if __name__ == "__main__":
    exit_with(main)
