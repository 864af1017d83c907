"""The API token rotates in place on the running service (`python -m secure_cache serve`).

The token files are switched the way the stack's material volumes switch them (every file
name points through a `..data` symlink that one rename replaces, infra/components/material.py):
add (a new token, the old one kept beside it), then retire (the old one dropped). Requests
with the old token run all along; none of them fails before the retirement, the new token
works from the add step on, and the old one is refused after the retirement - with the same
process throughout.
"""

from __future__ import annotations

import http.client
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cache_env import cache_environ
from tests.support.service_process import serving
from tests.support.status_loop import status_loop, statuses_before
from tests.support.tls_redis import TlsRedisServer, free_port

OLD = "o" * 24 + uuid.uuid4().hex  # checkov:skip=CKV_SECRET_6: test tokens, not credentials
NEW = "n" * 24 + uuid.uuid4().hex
# How long the retired token may stay accepted: the service checks its files at least once a
# second (secure_cache.core.DEFAULT_RELOAD_INTERVAL_S); this bound only keeps a broken service
# from hanging the test.
RETIRE_DEADLINE_S = 15.0


class MaterialDir:
    """A directory written like a material volume: `name -> ..data/name`, `..data -> ..rev`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def publish(self, files: dict[str, str]) -> None:
        revision = self.root / f"..{uuid.uuid4().hex}"
        revision.mkdir()
        for name, text in files.items():
            (revision / name).write_text(text + "\n")
            (revision / name).chmod(0o400)
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        staged = self.root / "..data_tmp"
        staged.symlink_to(revision.name)
        staged.replace(self.root / "..data")  # one rename switches every file at once

    def path(self, name: str) -> str:
        return str(self.root / name)


@dataclass
class Service:
    port: int
    log: Path

    def status(self, token: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/security-status", headers={"Authorization": f"Bearer {token}"})
            reply = conn.getresponse()
            reply.read()
            return reply.status
        finally:
            conn.close()

    def previous_tokens(self, token: str) -> float:
        """secure_cache_api_previous_tokens as a scrape of /metrics shows it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
            reply = conn.getresponse()
            body = reply.read().decode()
            assert reply.status == 200, body
        finally:
            conn.close()
        for family in text_string_to_metric_families(body):
            if family.name == "secure_cache_api_previous_tokens":
                assert OLD not in body
                assert NEW not in body
                return float(family.samples[0].value)
        raise AssertionError("/metrics has no secure_cache_api_previous_tokens")


@pytest.fixture
def material(tmp_path: Path) -> MaterialDir:
    material = MaterialDir(tmp_path / "material")
    material.publish({"api.token": OLD, "api.previous-tokens": ""})
    return material


@pytest.fixture
def service(tls_redis: TlsRedisServer, material: MaterialDir, tmp_path: Path) -> Iterator[Service]:
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        **cache_environ(tls_redis, tmp_path / "secrets"),
        "HTTP_API_TOKEN_FILE": material.path("api.token"),
        "HTTP_API_PREVIOUS_TOKENS_FILE": material.path("api.previous-tokens"),
        "HTTP_PORT": str(port),
    }
    log = tmp_path / "service.log"
    with serving(env, port, log):
        yield Service(port, log)


def test_api_token_rotation__in_place_without_refusing_a_valid_token(
    service: Service, material: MaterialDir
) -> None:
    assert service.status(NEW) == 401
    assert service.previous_tokens(OLD) == 0
    with status_loop(lambda: service.status(OLD)) as old_traffic:
        time.sleep(0.5)
        # Add: the new token handed out, the old one still accepted beside it.
        material.publish({"api.token": NEW, "api.previous-tokens": OLD})
        assert service.status(NEW) == 200  # at once: a refused token has the files read again
        assert service.status(OLD) == 200
        time.sleep(1.5)  # a timed check of the files happens in between: still both
        assert service.status(NEW) == 200
        assert service.previous_tokens(NEW) == 1  # ApiTokenRotationUnfinished's series
        # Retire.
        retired_at = time.monotonic()
        material.publish({"api.token": NEW, "api.previous-tokens": ""})
        deadline = retired_at + RETIRE_DEADLINE_S
        while service.status(OLD) != 401:
            assert time.monotonic() < deadline, "the retired token is still accepted"
            time.sleep(0.1)
        assert service.status(NEW) == 200
    before = statuses_before(old_traffic, retired_at)
    assert before, "no request with the old token finished before the retirement"
    assert set(before) == {200}, "the old token was refused before its retirement"
    assert service.status(OLD) == 401
    assert service.previous_tokens(NEW) == 0
    logs = service.log.read_text(errors="replace")
    assert "event=api_token_reload accepted=2" in logs
    assert "event=api_token_reload accepted=1" in logs
    assert OLD not in logs
    assert NEW not in logs
    assert "Traceback" not in logs
