"""`python -m secure_cache ...` as an operator runs it, against the TLS fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from secure_cache import SecureCache
from tests.support.cache_env import cache_environ, new_data_key, rotation_environ
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
    env = rotation_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    result = _cli(env, "rotate", "--batch-size", "5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["complete"] is True
    assert report["migrated"] == 20


def test_cli__rotate_says_when_it_deleted_entries_no_key_opens(
    tls_redis_factory: Any, tmp_path: Path
) -> None:
    """A tampered envelope opens with no key, and the pass deletes it: on s78, e19e7d9's
    pass deleted 1888 entries so (a newer version's, which this code leaves instead:
    tests/integration/test_cache_rollback.py) and ended at exit 0 with nothing but the
    JSON's "discarded" and a warning per entry. The CLI says it in one line."""
    server: TlsRedisServer = tls_redis_factory()
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        before.set_many({f"clirot:{i}": b"v" for i in range(3)})
        name = before.stored_name("clirot:0")
    raw = server.app_redis()
    envelope = raw.get(name)
    assert isinstance(envelope, bytes)
    raw.set(name, envelope[:-1] + bytes((envelope[-1] ^ 1,)))  # one bit of the tag
    env = rotation_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    result = _cli(env, "rotate")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["discarded"] == 1
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert "1 entry no data key opens was deleted" in err
    assert "event=integrity_failure" in err


def test_cli__rotate_as_the_app_user_is_refused_with_what_to_run_instead(
    tls_redis_factory: Any, tmp_path: Path
) -> None:
    """The serving app's ACL user may not WATCH: the pass says so and where it runs."""
    server: TlsRedisServer = tls_redis_factory()
    with SecureCache.from_env(cache_environ(server, tmp_path / "old")) as before:
        before.set("clirot:x", b"v")
    env = cache_environ(
        server, tmp_path / "r", data_key=new_data_key(), previous_keys=(server.material.data_key,)
    )
    result = _cli(env, "rotate")
    assert result.returncode == 5, result.stderr
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert "no permissions to run the 'scan' command" in err
    assert "the pass needs the rotation ACL user" in err
    assert "docker start --attach secure-redis-STACK-rotation" in err
    assert server.material.app_password not in err


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


@pytest.mark.parametrize(
    "args",
    [("healthcheck",), ("get", ""), ("frobnicate",)],
    ids=["healthcheck", "bad-key", "bad-command"],
)
def test_cli__health_check_and_usage_errors_import_no_redis_client(args: tuple[str, ...]) -> None:
    """The container's health check runs every 15 s (app/Dockerfile): it and a usage error
    load no redis-py (nor the OpenTelemetry it imports), and the health check no cipher either
    (0.75 s of CPU per start before, 0.35 s after, measured on a busy machine). What the health
    check loads at all is tests/unit/test_app_healthcheck.py's."""
    loaded = [sys.executable, "-X", "importtime", "-m", "secure_cache", *args]
    result = subprocess.run(
        loaded,
        env={"PATH": "/usr/bin:/bin", "HTTP_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (1, 2), result.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "secure_cache.cli_parser" in modules, "positive control: -X importtime lists imports"
    heavy = {m for m in modules if m.split(".")[0] in ("redis", "opentelemetry")}
    assert not heavy, sorted(heavy)[:5]
    if args == ("healthcheck",):
        assert "secure_cache.crypto" not in modules


# -- bad input and failures with a cause: one line, the documented exit code ------------------


def _one_line_error(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.mark.parametrize(
    "args",
    [
        ("set", "k", "v", "--ttl", "0"),
        ("set", "k", "v", "--ttl", "-5"),
        ("set", "k", "v", "--ttl", "soon"),
        ("set", "k" * 5000, "v"),
        ("get", ""),
        ("rotate", "--batch-size", "0"),
        ("rotate", "--max-batches", "-1"),
        ("frobnicate",),
    ],
    ids=["ttl-0", "ttl-negative", "ttl-text", "key-5000", "key-empty", "batch-0", "batches", "cmd"],
)
def test_cli__bad_arguments_exit_2_in_one_line(
    tls_redis: TlsRedisServer, tmp_path: Path, args: tuple[str, ...]
) -> None:
    stderr = _one_line_error(_cli(cache_environ(tls_redis, tmp_path / "s"), *args), 2)
    assert "error:" in stderr


def test_cli__http_port_abc_is_a_bad_setting_for_serve_and_healthcheck(
    tls_redis: TlsRedisServer, tmp_path: Path
) -> None:
    env = {**cache_environ(tls_redis, tmp_path / "s"), "HTTP_PORT": "abc"}
    for command in ("healthcheck", "serve"):
        stderr = _one_line_error(_cli(env, command), 2)
        assert "HTTP_PORT must be an integer from 1 to 65535" in stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1.evil.com/healthz", "http://localhost@evil.com/", "https://127.0.0.1/"]
)
def test_cli__healthcheck_probes_only_the_local_service(url: str) -> None:
    stderr = _one_line_error(_cli({}, "healthcheck", "--url", url), 2)
    assert "only probes the local service" in stderr


def test_cli__status_into_a_closed_pipe_is_quiet(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", **cache_environ(tls_redis, tmp_path / "s")}
    result = subprocess.run(
        [
            "bash",
            "-c",
            f'"{sys.executable}" -m secure_cache status | head -c1; echo " ${{PIPESTATUS[0]}}"',
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.decode().strip() == "{ 0"
    assert b"Traceback" not in result.stderr
    assert b"BrokenPipe" not in result.stderr


def test_cli__a_write_the_acl_refuses_exits_5(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    """NOPERM: the ACL grants `cache:*` only; a client configured with another prefix is refused."""
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_KEY_PREFIX="other:")
    stderr = _one_line_error(_cli(env, "set", "k", "v"), 5)
    assert "the value was not stored: redis refused the write" in stderr


def test_cli__wrong_password_says_authentication(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    wrong = "w" * 32
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_PASSWORD_FILE=None, REDIS_PASSWORD=wrong)
    stderr = _one_line_error(_cli(env, "get", "k"), 4)
    assert f"authentication: redis at 127.0.0.1:{tls_redis.port} refused user 'app'" in stderr
    assert wrong not in stderr
    assert tls_redis.material.app_password not in stderr


def test_cli__wrong_user_says_authentication(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_USERNAME="intruder")
    stderr = _one_line_error(_cli(env, "get", "k"), 4)
    assert "refused user 'intruder'" in stderr


def test_cli__wrong_ca_says_certificate_verification_with_openssl_reason(
    tls_redis: TlsRedisServer, tls_redis_factory: Any, tmp_path: Path
) -> None:
    other: TlsRedisServer = tls_redis_factory()
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_TLS_CA_CERT=str(other.material.ca_file))
    stderr = _one_line_error(_cli(env, "get", "k"), 4)
    assert f"certificate verification of redis at 127.0.0.1:{tls_redis.port} failed" in stderr
    assert "(OpenSSL: self-signed certificate in certificate chain)" in stderr
    assert "REDIS_TLS_CA_CERT" in stderr


def test_cli__tls_version_mismatch_says_tls_version(tls_redis_factory: Any, tmp_path: Path) -> None:
    server: TlsRedisServer = tls_redis_factory(tls_protocols=("TLSv1.2",))
    env = cache_environ(server, tmp_path / "s", environment="staging")  # the client needs 1.3
    stderr = _one_line_error(_cli(env, "get", "k"), 4)
    assert "TLS version: redis at" in stderr
    assert "TLSv1.3" in stderr


def test_cli__nothing_listening_says_network(tls_redis: TlsRedisServer, tmp_path: Path) -> None:
    port = free_port()
    env = cache_environ(tls_redis, tmp_path / "s", REDIS_URL=f"rediss://127.0.0.1:{port}")
    stderr = _one_line_error(_cli(env, "get", "k"), 4)
    assert f"network: cannot reach redis at 127.0.0.1:{port}" in stderr


@pytest.mark.parametrize("started_as", ["console script", "module"])
def test_cli__usage_names_the_command_it_was_started_as(tmp_path: Path, started_as: str) -> None:
    """`secure-cache` (the installed console script) and `python -m secure_cache` each show
    the command the operator typed in their usage and error lines."""
    if started_as == "module":
        argv, expected = [sys.executable, "-m", "secure_cache"], "python -m secure_cache"
    else:
        # What pip writes for app/pyproject.toml's [project.scripts] entry.
        script = tmp_path / "secure-cache"
        script.write_text("import sys\nfrom secure_cache.__main__ import run\nsys.exit(run())\n")
        argv, expected = [sys.executable, str(script)], "secure-cache"
    wrong = subprocess.run([*argv, "no-such-command"], capture_output=True, timeout=60, check=False)
    assert wrong.returncode == 2
    assert wrong.stderr.decode().startswith(f"{expected}: error: "), wrong.stderr
    helped = subprocess.run([*argv, "--help"], capture_output=True, timeout=60, check=False)
    assert helped.returncode == 0
    assert helped.stdout.decode().startswith(f"usage: {expected} "), helped.stdout
