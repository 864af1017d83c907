"""`python -m secure_cache ...` as an operator runs it, against the TLS fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from secure_cache import SecureCache
from tests.support.cache_env import cache_environ, new_data_key
from tests.support.tls_redis import TlsRedisServer, free_port


def _cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "secure_cache", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli__set_get_delete(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s")
    assert _cli(env, "set", "cli:key", "cli value", "--ttl", "60").returncode == 0
    got = _cli(env, "get", "cli:key")
    assert (got.returncode, got.stdout) == (0, b"cli value")
    assert _cli(env, "set", "cli:stdin", stdin=b"\x00binary\xff").returncode == 0
    assert _cli(env, "get", "cli:stdin").stdout == b"\x00binary\xff"
    assert _cli(env, "delete", "cli:key").returncode == 0
    assert _cli(env, "get", "cli:key").returncode == 1
    assert _cli(env, "delete", "cli:key").returncode == 1


def test_cli__status_prints_json(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    result = _cli(cache_environ(tls_redis, tmp_path / "s"), "status")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["backend"] == "redis"
    assert status["redis"]["acl_user"] == "app"


def test_cli__rotate(tls_redis_factory: Any, tmp_path: Path) -> None:
    server: TlsRedisServer = tls_redis_factory()
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        before.set_many({f"clirot:{i}": b"v" for i in range(20)})
    env = cache_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    result = _cli(env, "rotate", "--batch-size", "5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["complete"] is True
    assert report["migrated"] == 20


def test_cli__bad_configuration_exits_2_listing_every_problem(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    env = cache_environ(
        tls_redis,
        tmp_path / "s",
        REDIS_URL="redis://127.0.0.1:6379",
        REDIS_ENCRYPTION_KEY_FILE=None,
        REDIS_ENCRYPTION_KEY="too-short",
        ENVIRONMENT="prod",
    )
    result = _cli(env, "status")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "configuration is invalid (3 problems)" in stderr
    assert "REDIS_URL must use rediss://" in stderr
    assert "REDIS_ENCRYPTION_KEY must be 32 random bytes" in stderr
    assert "ENVIRONMENT must be one of" in stderr
    assert "too-short" not in stderr  # the (bad) secret is not echoed
    assert "Traceback" not in stderr


def test_cli__set_without_redis_fails_loudly(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_URL=f"rediss://127.0.0.1:{free_port()}")
    result = _cli(env, "set", "k", "v")
    assert result.returncode == 4
    assert b"not stored" in result.stderr


def test_cli__healthcheck_fails_without_a_service() -> None:
    result = _cli({"HTTP_PORT": str(free_port())}, "healthcheck")
    assert result.returncode == 1
