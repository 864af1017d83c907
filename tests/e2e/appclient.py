"""The cache app's HTTP API, as a client on this host sees it (127.0.0.1 only)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from tests.e2e.stacks import Stack

T = TypeVar("T")


def call(stack: Stack, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    url = stack.app_url + path
    assert url.startswith("http://127.0.0.1:"), url  # never anything but loopback
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


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
        code, body = call(stack, "GET", "/healthz")
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


__all__ = ["call", "delete", "get", "healthz", "put", "status", "wait_for"]
