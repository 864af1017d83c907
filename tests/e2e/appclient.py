"""The cache app's HTTP API, as a client on this host sees it (127.0.0.1 only).

Every route but /healthz needs the stack's API token; the tests read it where the deployed
app reads it, from its material volume (`docker exec <app> cat /etc/secure-cache/api.token`,
as the app's own uid), and re-read it once when it was replaced by a redeploy.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from tests.e2e.stacks import Stack

T = TypeVar("T")


TOKEN_FILE = "/etc/secure-cache/api.token"
_TOKENS: dict[str, str] = {}


def read_api_token(app: str, *, check: bool = True) -> str:
    """The API token in container `app`'s token file; with check=False, "" when it could not
    be read (the walk reads it while the app may be being replaced, tests/e2e/walk.py)."""
    result = subprocess.run(
        ["docker", "exec", app, "cat", TOKEN_FILE],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def api_token(stack: Stack, *, refresh: bool = False) -> str:
    if refresh or stack.app not in _TOKENS:
        _TOKENS[stack.app] = read_api_token(stack.app)
    return _TOKENS[stack.app]


def raw_call(
    stack: Stack,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request with exactly `headers` (no token added)."""
    url = stack.app_url + path
    assert url.startswith("http://127.0.0.1:"), url  # never anything but loopback
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call(stack: Stack, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One request with the stack's API token."""
    code, answer = 0, b""
    for refresh in (False, True):
        auth = {"Authorization": f"Bearer {api_token(stack, refresh=refresh)}"}
        code, answer = raw_call(stack, method, path, body, auth)
        if code != 401:
            break
    return code, answer


def put(stack: Stack, key: str, value: bytes) -> int:
    return call(stack, "PUT", "/cache/" + quote(key, safe=""), value)[0]


def get(stack: Stack, key: str) -> bytes | None:
    status, body = call(stack, "GET", "/cache/" + quote(key, safe=""))
    assert status in (200, 404), f"GET /cache/<key> answered {status}"
    return body if status == 200 else None


def delete(stack: Stack, key: str) -> int:
    return call(stack, "DELETE", "/cache/" + quote(key, safe=""))[0]


def status(stack: Stack) -> dict[str, Any]:
    code, body = call(stack, "GET", "/security-status")
    assert code == 200, f"/security-status answered {code}"
    return dict(json.loads(body))


def healthz(stack: Stack) -> tuple[int, dict[str, Any]]:
    try:
        code, body = raw_call(stack, "GET", "/healthz")
    except OSError:
        return 0, {}
    return code, (json.loads(body) if code == 200 else {})


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


__all__ = [
    "api_token",
    "call",
    "delete",
    "get",
    "healthz",
    "put",
    "raw_call",
    "status",
    "wait_for",
]
