"""Running a command's entry point in-process, as the input tests do (tests/unit/
test_unanticipated_inputs*.py, test_fuzz_entry_points.py and others): its exit code and all
it printed, with any exception but SystemExit propagating, which is the failure they look for
(a traceback where a one-line error belongs)."""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def run_entry(entry: Callable[[], int | None]) -> tuple[int, str]:
    """`entry()`'s exit code (a SystemExit's, 2 for a non-integer one) and its stdout+stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code or 0), out.getvalue() + err.getvalue()


def assert_quiet_without_a_reader(argv: Sequence[str], cwd: Path, *, code: int = 0) -> None:
    """Run `argv` with the read end of its stdout closed before its first line (`... | head`):
    it must exit `code`, its own status, with no BrokenPipeError traceback on stderr."""
    with subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # the reader leaves before the first line
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=300) == code, stderr
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


__all__ = ["assert_quiet_without_a_reader", "run_entry"]
