"""The deployed app's HTTP API lets no one in who does not belong, and no client can exhaust it:
refused without the stack's token or with a foreign Host, /healthz answering under an idle-
connection flood, and the container neither OOM-killed nor restarted by concurrent large PUTs."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from typing import Any

import docker
import pytest

from tests.e2e import appclient
from tests.e2e.stacks import Stack, inspect

pytestmark = pytest.mark.security("identity")

MIB = 1 << 20


def _raw(stack: Stack, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", stack.settings.app_host_port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer " + "x" * 48}, {"Authorization": "Basic YWRtaW46YWRtaW4="}],
    ids=["no-token", "wrong-token", "basic-auth"],
)
def test_api__refuses_a_request_without_the_stacks_token(
    stack: Stack, headers: dict[str, str]
) -> None:
    key = f"e2e/unauth/{uuid.uuid4()}"
    status, body = appclient.raw_call(stack, "PUT", f"/cache/{key}", b"intruder", headers)
    assert status == 401
    assert "error" in json.loads(body)
    assert appclient.raw_call(stack, "GET", "/security-status", None, headers)[0] == 401
    assert appclient.get(stack, key) is None, "the refused write stored nothing"


def test_api__refuses_a_foreign_host_even_with_the_token(stack: Stack) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends its own Host."""
    key = f"e2e-rebound-{uuid.uuid4().hex}"
    token = appclient.api_token(stack)
    answer = _raw(
        stack,
        f"PUT /cache/{key} HTTP/1.1\r\nHost: evil.example:{stack.settings.app_host_port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 1\r\n\r\nx".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 421 ")
    assert appclient.get(stack, key) is None


def test_api__healthz_answers_while_200_idle_connections_are_held(stack: Stack) -> None:
    idle = [
        socket.create_connection(("127.0.0.1", stack.settings.app_host_port), timeout=10)
        for _ in range(200)
    ]
    try:
        assert appclient.healthz(stack)[0] == 200
    finally:
        for sock in idle:
            sock.close()


def _state(client: docker.DockerClient, stack: Stack) -> tuple[int, bool]:
    details: dict[str, Any] = inspect(client, stack.app)
    return int(details["RestartCount"]), bool(details["State"]["OOMKilled"])


@pytest.mark.security("runtime")
def test_api__concurrent_large_puts_neither_kill_nor_restart_the_app(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    """63 concurrent 1 MiB uploads (more than the memory limit's worth with the old service):
    each is stored or refused with 503 by the in-flight budget; the app stays up."""
    before = _state(docker_client, stack)
    token = appclient.api_token(stack)
    statuses: list[bytes] = []
    lock = threading.Lock()

    def upload(index: int) -> None:
        head = (
            f"PUT /cache/e2e-flood-{index} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {MIB}\r\n\r\n"
        ).encode()
        try:
            answer = _raw(stack, head + b"v" * MIB)
        except OSError as exc:  # refused early and closed while we were still sending
            answer = f"closed {type(exc).__name__}".encode()
        with lock:
            statuses.append(answer.split(b"\r\n", 1)[0])

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(63)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == 63
    assert all(s.startswith((b"HTTP/1.1 204", b"HTTP/1.1 503", b"closed")) for s in statuses), (
        statuses
    )
    assert appclient.healthz(stack)[0] == 200
    assert _state(docker_client, stack) == before, "the app was not restarted nor OOM-killed"
    for index in range(63):
        appclient.delete(stack, f"e2e-flood-{index}")
