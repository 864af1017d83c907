"""The Redis exporter against a real TLS-only redis-server, as its own least-privilege user.

The server gets the exporter's ACL user with exactly `EXPORTER_COMMANDS` (the module's single
source) and the exporter a client certificate of its own. The tests provoke what the exporter
must report (a wrong-password AUTH, a NOPERM) and check that its identity may do nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from infra.redis_acl import password_hash
from secure_cache.metrics_server import serve_metrics
from secure_cache.prometheus import CertificateRole
from secure_cache.redis_exporter import EXPORTER_COMMANDS, EXPORTER_USER, connect, registry_for
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis
from tests.support.tls_redis import free_port


@pytest.fixture(scope="module")
def exporter_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterRedis]:
    with running_exporter_redis(tmp_path_factory.mktemp("exporter")) as setup:
        yield setup


@pytest.fixture
def exporter_client(exporter_redis: ExporterRedis) -> Iterator[redis.Redis]:
    client = connect(exporter_redis.settings())
    yield client
    client.close()


def _scrape(client: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = generate_latest(registry_for(client)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


WRONGPASS = ("redis_errors_total", (("error", "WRONGPASS"),))
NOPERM = ("redis_errors_total", (("error", "NOPERM"),))


def test_scrape__reads_info_as_the_exporter(exporter_client: redis.Redis) -> None:
    values = _scrape(exporter_client)
    assert values[("redis_up", ())] == 1
    assert values[("redis_memory_max_bytes", ())] == 64 * 1024 * 1024
    assert values[("redis_connected_clients", ())] >= 1
    assert ("redis_evicted_keys_total", ()) in values


@pytest.mark.parametrize(
    ("provoke", "counter", "acl_reason"),
    [
        pytest.param(ExporterRedis.wrong_password, WRONGPASS, "auth", id="wrong-password"),
        pytest.param(ExporterRedis.denied_key, NOPERM, "key", id="denied-command"),
    ],
)
def test_refusal__moves_its_error_counter_and_the_acl_log(
    exporter_redis: ExporterRedis,
    exporter_client: redis.Redis,
    provoke: Callable[[ExporterRedis], object],
    counter: tuple[str, tuple[tuple[str, str], ...]],
    acl_reason: str,
) -> None:
    before = _scrape(exporter_client)
    provoke(exporter_redis)
    after = _scrape(exporter_client)
    assert after[counter] == before[counter] + 1
    assert after[("redis_acl_log_events", (("reason", acl_reason),))] >= 1


@pytest.mark.parametrize(
    "command",
    [
        ("GET", "cache:anything"),
        ("SET", "cache:x", "1"),
        ("KEYS", "*"),
        ("CONFIG", "GET", "requirepass"),
        ("ACL", "WHOAMI"),
        ("ACL", "LIST"),
        ("ACL", "SETUSER", "exporter", "+@all"),
        ("CLIENT", "LIST"),
        ("MONITOR",),
        ("PING",),
        ("SUBSCRIBE", "news"),
        ("CLIENT", "KILL", "USER", "app"),
        ("SHUTDOWN",),
        ("BGSAVE",),
        ("SAVE",),
        ("CONFIG", "SET", "aof-disable-auto-gc", "yes"),
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_exporter_identity__is_refused_everything_else(
    exporter_client: redis.Redis, command: tuple[str, ...]
) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        exporter_client.execute_command(*command)  # type: ignore[no-untyped-call]


def test_exporter_rules__grant_info_acl_log_and_bgrewriteaof_only(
    exporter_redis: ExporterRedis, exporter_client: redis.Redis
) -> None:
    # ACL GETUSER needs @admin, which no user here has: the rule is checked as written in the
    # ACL file Redis loaded; its effect, by the refusals above and the denial count below.
    assert EXPORTER_COMMANDS == "-@all +info +acl|log +bgrewriteaof"
    line = next(
        entry
        for entry in (exporter_redis.server.workdir / "users.acl").read_text().splitlines()
        if entry.startswith(f"user {EXPORTER_USER} ")
    )
    assert line.endswith(f"resetkeys resetchannels {EXPORTER_COMMANDS}")

    def own_denials() -> int:
        entries: list[dict[str, Any]] = exporter_client.acl_log()
        return sum(int(e["count"]) for e in entries if e.get("username") == EXPORTER_USER)

    before = own_denials()
    for _ in range(3):
        assert _scrape(exporter_client)[("redis_up", ())] == 1
    assert own_denials() == before, "scraping made the exporter's identity hit a denial"


def test_scrape__exports_its_own_certificates_expiry(exporter_redis: ExporterRedis) -> None:
    settings = exporter_redis.settings()
    client = connect(settings)
    files: dict[CertificateRole, Path] = {
        "ca": Path(settings.ca_file),
        "client": Path(settings.cert_file),
    }
    try:
        body = generate_latest(registry_for(client, files)).decode()
    finally:
        client.close()
    expiry = {
        s.labels["certificate"]: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "secure_cache_certificate_expiry_timestamp_seconds"
    }
    assert set(expiry) == {"ca", "client"}
    assert expiry["client"] > time.time()


def test_wrong_exporter_password__is_redis_up_zero(exporter_redis: ExporterRedis) -> None:
    client = connect(exporter_redis.settings(REDIS_PASSWORD="wrong-password"))
    try:
        values = _scrape(client)
    finally:
        client.close()
    assert values[("redis_up", ())] == 0
    assert not any(name.startswith("redis_memory") for name, _ in values)


def test_served_over_http(exporter_redis: ExporterRedis) -> None:
    client = connect(exporter_redis.settings())
    port = free_port()
    server, thread = serve_metrics(registry_for(client), "127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            body = reply.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        client.close()
    assert "\nredis_up 1.0\n" in body
    assert exporter_redis.password not in body


EXPORTER_CLI = (sys.executable, "-m", "secure_cache.redis_exporter")


def _environ(exporter_redis: ExporterRedis, **env: str) -> dict[str, str]:
    """The exporter's configuration for this server, as its container gets it."""
    settings = exporter_redis.settings()
    return {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": exporter_redis.server.url,
        "REDIS_PASSWORD": exporter_redis.password,
        "REDIS_TLS_CA_CERT": settings.ca_file,
        "REDIS_TLS_CERT_FILE": settings.cert_file,
        "REDIS_TLS_KEY_FILE": settings.key_file,
        "ENVIRONMENT": "development",
        **env,
    }


def _cli(exporter_redis: ExporterRedis, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER_CLI, *args],
        env=_environ(exporter_redis, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_scrape__prints_the_exposition(exporter_redis: ExporterRedis) -> None:
    result = _cli(exporter_redis, "scrape")
    assert result.returncode == 0, result.stderr
    assert "\nredis_up 1.0\n" in result.stdout
    assert exporter_redis.password not in result.stdout + result.stderr


def test_cli_scrape__exit_1_when_redis_refuses(exporter_redis: ExporterRedis) -> None:
    # checkov:skip=CKV_SECRET_6: a wrong password the server must refuse
    result = _cli(exporter_redis, "scrape", REDIS_PASSWORD="wrong-password-0123456789")
    assert result.returncode == 1
    assert "event=redis_scrape_failed error=AuthenticationError" in result.stderr
    assert "wrong-password-0123456789" not in result.stdout + result.stderr


def test_cli__bad_configuration_exits_2_with_the_fix(exporter_redis: ExporterRedis) -> None:
    result = _cli(exporter_redis, "scrape", REDIS_URL="redis://127.0.0.1:6379")
    assert result.returncode == 2
    assert "REDIS_URL must be rediss://" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_serve__answers_the_healthcheck_and_stops_on_sigterm(
    exporter_redis: ExporterRedis,
) -> None:
    port = str(free_port())
    serve = subprocess.Popen(
        [*EXPORTER_CLI, "serve"],
        env=_environ(exporter_redis, METRICS_PORT=port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _cli(exporter_redis, "healthcheck", METRICS_PORT=port).returncode != 0:
            assert serve.poll() is None, serve.stderr.read() if serve.stderr else ""
            assert time.monotonic() < deadline, "the exporter never answered its healthcheck"
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            assert b"\nredis_up 1.0\n" in reply.read()
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=15) == 0
    assert _cli(exporter_redis, "healthcheck", METRICS_PORT=port).returncode == 1


def test_rotated_password_file__is_used_by_the_next_connection(tmp_path: Path) -> None:
    """The deployed exporter reads REDIS_PASSWORD_FILE; when the stack rotates the password
    in place (the file rewritten, Redis's users reloaded), the next scrape authenticates with
    the new one, without a restart of the exporter."""
    with running_exporter_redis(tmp_path) as setup:
        password_file = tmp_path / "exporter.password"
        password_file.write_text(setup.password + "\n")
        settings = setup.settings(REDIS_PASSWORD="", REDIS_PASSWORD_FILE=str(password_file))
        client = connect(settings)
        try:
            assert _scrape(client)[("redis_up", ())] == 1
            new = "rotated-" + setup.password
            acl = setup.server.workdir / "users.acl"
            acl.write_text(
                acl.read_text().replace(password_hash(setup.password), password_hash(new))
            )
            setup.server.stop()  # Redis drops the exporter's connection, as ACL LOAD does
            setup.server.start()
            password_file.write_text(new + "\n")
            assert _scrape(client)[("redis_up", ())] == 1
        finally:
            client.close()
