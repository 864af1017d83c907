"""scripts/security_summary.py: the setup script's table of security checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT


def _print_table(summary: Path) -> str:
    """Run it as scripts/setup-secure-redis.sh does."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "security_summary.py"), str(summary)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def _area(title: str, passed: int, failed: int = 0, skipped: int = 0) -> dict[str, object]:
    failures = [f"tests/e2e/test_x.py::t{i}" for i in range(failed)]
    return {
        "title": title,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "failures": failures,
    }


def test_table__pass_fail_skip_per_area_with_the_failed_tests(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    areas = [
        _area("1 transport", 5),
        _area("2 identity", 3, failed=1),
        _area("3 network", 0, skipped=2),
    ]
    summary.write_text(json.dumps({"areas": areas}))
    lines = _print_table(summary).splitlines()
    assert lines[0].split() == ["security", "check", "result"]
    assert lines[1].endswith("PASS (5 passed)")
    assert lines[2].endswith("FAIL (3 passed, 1 failed)")
    assert lines[3] == "    failed: tests/e2e/test_x.py::t0"
    assert lines[4].endswith("SKIP (0 passed, 2 skipped)")


@pytest.mark.parametrize("content", [None, "not json", '{"areas": 5}', '{"other": []}'])
def test_table__a_missing_or_broken_summary_says_the_run_did_not_finish(
    tmp_path: Path, content: str | None
) -> None:
    summary = tmp_path / "summary.json"
    if content is not None:
        summary.write_text(content)
    assert "no results (the verification did not run to the end)" in _print_table(summary)


@pytest.mark.parametrize("kind", ["fifo", "directory", "nested-100000-deep"])
def test_table__a_summary_that_is_no_file_or_too_deep_says_the_run_did_not_finish(
    tmp_path: Path, kind: str
) -> None:
    """A FIFO with no writer blocked the table forever; JSON nested 100000 deep was a
    RecursionError traceback."""
    summary = tmp_path / "summary.json"
    if kind == "fifo":
        os.mkfifo(summary)
    elif kind == "directory":
        summary.mkdir()
    else:
        summary.write_text("[" * 100_000 + "]" * 100_000)
    assert "no results (the verification did not run to the end)" in _print_table(summary)
