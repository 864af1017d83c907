"""The HTTP service (`python -m secure_cache serve`) as a real process for integration tests."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

_START_ATTEMPTS = 100
_START_POLL_S = 0.1


def start(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The service started with `env`, its stderr in `log`; not awaited."""
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "secure_cache", "serve"],
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@contextmanager
def serving(env: Mapping[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start the service with `env` (its HTTP_PORT is `port`, stderr goes to `log`), wait until
    /healthz answers 200 (the test fails with the log if it never does), stop it afterwards."""
    process = start(env, log)
    try:
        _await_healthy(port, log)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _await_healthy(port: int, log: Path) -> None:
    for _ in range(_START_ATTEMPTS):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(_START_POLL_S)
        finally:
            conn.close()
    pytest.fail(f"the service did not start:\n{log.read_text(errors='replace')}")


__all__ = ["serving", "start"]
