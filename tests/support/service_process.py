"""The HTTP service (`python -m secure_cache serve`) as a real process for integration tests."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cache_env import cache_environ, write_secret
from tests.support.tls_redis import TlsRedisServer

# How long the service may take to answer /healthz after it was started: about 1.5 s on an
# idle machine, 5 to 10 s with both cores busy (CI shares them with the e2e deploy), where a
# bound of 100 polls (about 10 s) was met. A service that exits is reported at once.
_START_TIMEOUT_S = 60.0
_START_POLL_S = 0.1


def service_environ(
    server: TlsRedisServer, secrets: Path, port: int, token: str, **extra: str
) -> dict[str, str]:
    """What the service needs to start against `server`: the cache's environment, the API
    token in a file under `secrets`, the port; `extra` adds or overrides variables."""
    return {
        "PATH": os.environ["PATH"],
        **cache_environ(server, secrets),
        "HTTP_API_TOKEN_FILE": str(write_secret(secrets, "api.token", token)),
        "HTTP_PORT": str(port),
        **extra,
    }


SERVE_ARGV = (sys.executable, "-m", "secure_cache", "serve")


def start(
    env: Mapping[str, str], log: Path, argv: Sequence[str] = SERVE_ARGV
) -> subprocess.Popen[bytes]:
    """The service started with `env` (by `argv`: a test may wrap it), its stderr in `log`;
    not awaited."""
    with log.open("wb") as stderr:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


@contextmanager
def serving(
    env: Mapping[str, str], port: int, log: Path, argv: Sequence[str] = SERVE_ARGV
) -> Iterator[subprocess.Popen[bytes]]:
    """Start the service with `env` (its HTTP_PORT is `port`, stderr goes to `log`; `argv` as
    `start`'s), wait until /healthz answers 200 (the test fails with the log if it exits or
    never does), stop it afterwards."""
    process = start(env, log, argv)
    try:
        _await_healthy(process, port, log)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _await_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            answer = f"answered {conn.getresponse().status}"
        except OSError as exc:
            answer = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        if answer == "answered 200":
            return
        if process.poll() is not None:
            pytest.fail(
                f"the service exited with {process.returncode} before /healthz answered:\n"
                f"{log.read_text(errors='replace')}"
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"the service did not answer /healthz within {_START_TIMEOUT_S:.0f} s "
                f"(last: {answer}):\n{log.read_text(errors='replace')}"
            )
        time.sleep(_START_POLL_S)


__all__ = ["serving", "start"]
