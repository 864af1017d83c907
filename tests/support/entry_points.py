"""Running a command's entry point in-process, as the input tests do (tests/unit/
test_unanticipated_inputs*.py, test_fuzz_entry_points.py and others): its exit code and all
it printed, with any exception but SystemExit propagating, which is the failure they look for
(a traceback where a one-line error belongs)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable


def run_entry(entry: Callable[[], int | None]) -> tuple[int, str]:
    """`entry()`'s exit code (a SystemExit's, 2 for a non-integer one) and its stdout+stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = entry()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return int(code or 0), out.getvalue() + err.getvalue()


__all__ = ["run_entry"]
