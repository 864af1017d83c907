"""Monitoring on the deployed stack: a real Prometheus scrapes the app's /metrics and the Redis
exporter, with the repository's alert rules (monitoring/alerts.yml, every `for:` shortened to
2 s as in tests/integration/test_prometheus_alerts.py), and the alerts fire when provoked.

Prometheus (Debian's package) runs on the host: it scrapes the app through its published
loopback port with the API token as a bearer credentials file (monitoring/prometheus.yml), and
the exporter at its address on the stack's frontend network, where a Prometheus beside the
stack would reach it (no host port is published for it). The token file lives in a private
temporary directory and is removed with it.

Order matters and is the file's: healthy first (nothing pending or firing), then the
provocations (a tampered value, wrong passwords), then the scan of everything Prometheus
stored. The provocations raise counters other tests read (tests/e2e/test_e2e_data.py counts
the integrity failures during its own round trip and its own swap), so they, and the scan
that must follow them, are `fault` tests: run after every check of the undisturbed stacks,
alone (scripts/test.sh runs those checks on two workers, then the fault tests in a session of
their own, whose Prometheus has scraped nothing yet: each of them waits for the first scrape
before it provokes or scans). What depends on a stack's settings runs on every stack: the
targets and their certificates' validity, the healthy stack's silence (it found a
production-only false alarm), the scan for the stack's secrets and status.sh. The provoked
alerts run on the first stack only (`one_stack`, each with its reason). Stopping Redis is a
fault test too (like tests/e2e/test_e2e_faults.py) and starts it again before it ends.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import docker
import pytest

from infra.components.exporter import EXPORTER_PORT, WATCHED_CERTIFICATES
from infra.settings import REPO_ROOT
from tests.e2e import appclient
from tests.e2e.conftest import XDIST_WORKER_ENV
from tests.e2e.hosts import container_host
from tests.e2e.probes import APP_MATERIAL, ProbeContainer, app_auth, app_client_files, redis_tls
from tests.e2e.stacks import Stack
from tests.e2e.stored import put_and_find
from tests.support.prometheus_server import PrometheusServer

pytestmark = pytest.mark.security("operations")

APP_JOB: Final = "secure-cache"
EXPORTER_JOB: Final = "redis-exporter"
WAIT_S: Final = 45.0
# Alerts other e2e modules provoke on purpose (tests/e2e/test_e2e_acl.py, test_e2e_data.py).
PROVOKED_BY_OTHER_TESTS: Final = frozenset(
    {
        "CacheIntegrityFailure",
        "CacheAclDenials",
        "CacheAuthenticationFailures",
        "RedisAuthFailureBurst",
        "RedisAclDenials",
    }
)
# The probe's key names: none of them may reach a label.
RUN: Final = uuid.uuid4().hex[:8]
PROBE_KEYS: Final = (f"e2e-monitoring-victim-{RUN}", f"e2e-monitoring-donor-{RUN}")
# Files of the stack that hold a secret, by container: every one is searched for in Prometheus.
SECRET_FILES: Final = {
    "app": [f"{APP_MATERIAL}/{n}" for n in ("redis.password", "data.key", "api.token")],
    "redis-exporter": ["/etc/secure-cache/redis.password", "/etc/secure-cache/exporter.key"],
}


def frontend_address(client: docker.DockerClient, stack: Stack, container: str) -> str:
    networks = client.api.inspect_container(container)["NetworkSettings"]["Networks"]
    return str(networks[stack.frontend]["IPAddress"])


@pytest.fixture(scope="module")
def prometheus(stack: Stack, docker_client: docker.DockerClient) -> Iterator[PrometheusServer]:
    with tempfile.TemporaryDirectory(prefix="secure-redis-e2e-prometheus-") as tmp:
        workdir = Path(tmp)
        token = workdir / "api.token"
        token.touch(mode=0o600)
        token.write_text(appclient.api_token(stack))
        server = PrometheusServer(
            workdir,
            {
                APP_JOB: f"127.0.0.1:{stack.settings.app_host_port}",
                EXPORTER_JOB: (
                    f"{frontend_address(docker_client, stack, stack.exporter)}:{EXPORTER_PORT}"
                ),
            },
            bearer_files={APP_JOB: token},
            # A stopped Redis costs the exporter's scrape a DNS lookup of `redis` that Docker
            # leaves unanswered (1 s, infra/components/exporter.py): the scrape timeout must
            # exceed it, or the target itself reads as down (TargetDown, not RedisDown).
            scrape_seconds=3,
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def value(prometheus: PrometheusServer, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def targets_up(prometheus: PrometheusServer) -> dict[str, float | None]:
    return {job: value(prometheus, f'up{{job="{job}"}}') for job in (APP_JOB, EXPORTER_JOB)}


def wait_until_scraped(prometheus: PrometheusServer, series: str) -> None:
    """Both targets up and `series` stored: a test that starts the module's Prometheus (the
    fault session starts its own) must not provoke before the first scrape, since the alert
    rules' increase() sees nothing without a sample from before the provocation."""
    prometheus.wait_for(
        lambda: targets_up(prometheus) == {APP_JOB: 1.0, EXPORTER_JOB: 1.0},
        timeout=WAIT_S,
        what="both targets up",
    )
    prometheus.wait_for(
        lambda: value(prometheus, series) is not None, timeout=WAIT_S, what=f"a sample of {series}"
    )


def test_monitoring__both_targets_are_scraped_and_up(prometheus: PrometheusServer) -> None:
    prometheus.wait_for(
        lambda: targets_up(prometheus) == {APP_JOB: 1.0, EXPORTER_JOB: 1.0},
        timeout=WAIT_S,
        what="both targets up",
    )
    assert value(prometheus, "redis_up") == 1.0
    # The app's certificates as served and read, and the stack's data-key generation.
    for role in ("ca", "server", "client"):
        expiry = (
            f'secure_cache_certificate_expiry_timestamp_seconds{{job="{APP_JOB}",'
            f'certificate="{role}"}}'
        )
        assert (value(prometheus, f"{expiry} - time()") or 0) > 86400, role
    assert value(prometheus, "secure_cache_data_key_generation") >= 1  # type: ignore[operator]
    # The exporter's own certificates and its copies of the identities no running process
    # reports, under its job: the same certificate alerts cover them.
    for role in ("ca", "client", *WATCHED_CERTIFICATES):
        expiry = (
            f'secure_cache_certificate_expiry_timestamp_seconds{{job="{EXPORTER_JOB}",'
            f'certificate="{role}"}}'
        )
        assert (value(prometheus, f"{expiry} - time()") or 0) > 86400, f"exporter {role}"
    # One CA trusted, no password left in its ROTATE phase: a stack at rest.
    for job in (APP_JOB, EXPORTER_JOB):
        assert value(prometheus, f'secure_cache_ca_bundle_certificates{{job="{job}"}}') == 1.0
    assert value(prometheus, "secure_cache_acl_passwords_rotating") == 0.0


def test_monitoring__a_healthy_stack_raises_no_alert(prometheus: PrometheusServer) -> None:
    """Nothing pending or firing. Under pytest-xdist another worker's tests provoke the
    security-event alerts on purpose meanwhile (wrong passwords, NOPERM, a swapped value), so
    there only the alerts no test provokes are required silent."""
    prometheus.wait_for(
        lambda: targets_up(prometheus) == {APP_JOB: 1.0, EXPORTER_JOB: 1.0},
        timeout=WAIT_S,
        what="both targets up",
    )
    # Several evaluations with `for: 2s`: anything the healthy stack would raise is firing.
    prometheus.wait_for(
        lambda: (value(prometheus, "sum(count_over_time(up[10s]))") or 0) >= 6,
        timeout=WAIT_S,
        what="six seconds of samples",
    )
    active = prometheus.active_alerts()
    if os.environ.get(XDIST_WORKER_ENV):
        active -= PROVOKED_BY_OTHER_TESTS
    assert active == set()


@pytest.mark.fault  # it raises the app's integrity-failure count, which other tests read
@pytest.mark.one_stack(
    "the app's integrity check, its counter and the alert rule are one code path; no stack "
    "setting changes how a swapped value is detected, counted or alerted on"
)
def test_monitoring__a_tampered_value_fires_the_integrity_alert(
    prometheus: PrometheusServer,
    stack: Stack,
    probe: ProbeContainer,
    rotation_probe: ProbeContainer,
) -> None:
    """An attacker with the app's Redis credentials overwrites a stored value: the app's
    read is a miss, counted, and CacheIntegrityFailure fires."""
    wait_until_scraped(prometheus, f'secure_cache_integrity_failures_total{{job="{APP_JOB}"}}')
    victim = PROBE_KEYS[0]
    name = put_and_find(rotation_probe, stack, victim, b"the victim's value")
    tamper = [app_auth(), ["SET", name, "not an envelope"]]
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=tamper))
    assert result["replies"][1] == "+OK", "the attacker's write went through"
    assert appclient.get(stack, victim) is None, "the tampered value is never returned"
    prometheus.wait_for(
        lambda: "CacheIntegrityFailure" in prometheus.alerts(),
        timeout=WAIT_S,
        what="CacheIntegrityFailure firing",
    )


@pytest.mark.fault  # it raises Redis' WRONGPASS count and fires an alert
@pytest.mark.one_stack(
    "a wrong password is refused and counted the same way whatever the stack's password "
    "length; the exporter and the alert rule are the same on every stack"
)
def test_monitoring__wrong_passwords_are_counted_and_fire_the_auth_burst_alert(
    prometheus: PrometheusServer, stack: Stack, probe: ProbeContainer
) -> None:
    """A probe with a valid client certificate tries wrong passwords: Redis counts each
    WRONGPASS, the exporter exports it, RedisAuthFailureBurst (> 5 in 5 min) fires."""
    wrongpass = 'redis_errors_total{error="WRONGPASS"}'
    wait_until_scraped(prometheus, wrongpass)
    before = value(prometheus, wrongpass) or 0.0
    attempts = [["AUTH", "app", f"not-the-password-{n}"] for n in range(8)]
    result = probe.run("tls", **redis_tls(stack, **app_client_files(), commands=attempts))
    assert all(reply.startswith("-WRONGPASS") for reply in result["replies"])
    prometheus.wait_for(
        lambda: (value(prometheus, wrongpass) or 0.0) >= before + 8,
        timeout=WAIT_S,
        what="the eight WRONGPASS counted",
    )
    prometheus.wait_for(
        lambda: "RedisAuthFailureBurst" in prometheus.alerts(),
        timeout=WAIT_S,
        what="RedisAuthFailureBurst firing",
    )


def stack_secrets(stack: Stack) -> list[str]:
    """Every secret file's content, and each line of it (a keyring may hold several)."""
    found: list[str] = []
    for suffix, paths in SECRET_FILES.items():
        host = container_host(stack.object(suffix))
        for path in paths:
            text = host.file(path).content_string.strip()
            found += [text, *(line.strip() for line in text.splitlines() if line.strip())]
    return [s for s in found if len(s) >= 16]


@pytest.mark.fault  # not disruptive: it must follow the provocations, in the same session
def test_monitoring__stored_series_carry_no_secret_or_key_name(
    prometheus: PrometheusServer, stack: Stack
) -> None:
    """Everything Prometheus stored about the stack (every series' labels), searched for
    every secret of the stack and every key name the probes used. Only booleans and
    counts are printed."""
    wait_until_scraped(prometheus, f'secure_cache_integrity_failures_total{{job="{APP_JOB}"}}')
    series: list[dict[str, Any]] = prometheus.api("series", **{"match[]": '{__name__=~".+"}'})
    stored = json.dumps(series)
    assert len(series) > 50, "positive control: the scrape stored the stack's series"
    assert "secure_cache_integrity_failures_total" in stored, "positive control"
    secrets = stack_secrets(stack)
    assert len(secrets) >= len(SECRET_FILES["app"]) + 1, "positive control: secrets were read"
    leaked = sum(secret in stored for secret in secrets)
    assert leaked == 0, f"{leaked} secret(s) of the stack appear in Prometheus' series"
    for key in PROBE_KEYS:
        shown = key in stored
        assert not shown, "a key name the probe used appears in a label"


def _status_sh(stack: Stack) -> subprocess.CompletedProcess[str]:
    """scripts/status.sh STACK, which must succeed."""
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "status.sh"), stack.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_status_sh__reads_every_certificate_and_the_generation_from_the_stack(
    stack: Stack,
) -> None:
    result = _status_sh(stack)
    rows = {
        line.split("  ")[0].strip(): line.split()[-1]
        for line in result.stdout.splitlines()
        if line.strip()
    }
    # The rotation pass is declared stopped and the reload jobs have exited: read all the same.
    for label in (
        "CA (earliest in the bundle)",
        "Redis server (as served)",
        "app client",
        "redis-exporter client",
        "rotation client",
        "healthcheck client",
        "reload client",
    ):
        assert float(rows[label]) > 1, f"{label}: {rows.get(label)}"
    generation = stack.settings.data_key_generation
    assert f"data-key generation {generation} " in result.stdout
    assert "the app serves from: redis" in result.stdout
    # Copied out of the Redis and app containers; two only mid CA rollover.
    assert "CAs trusted: Redis 1, app 1" in result.stdout
    assert "rotation unfinished" not in result.stdout
    # On or off (the engine is the machine's), the line is there: docker info was read.
    assert "live-restore: o" in result.stdout


def test_monitoring__the_exporters_copies_expire_with_the_files_each_identity_uses(
    prometheus: PrometheusServer, stack: Stack
) -> None:
    """The exporter reports the health check's, the reload jobs' and the rotation pass's
    certificates from copies in its own volume (infra/components/exporter.py); status.sh
    reads each from the container that uses it (`docker cp`). Both name the same notAfter."""
    wait_until_scraped(
        prometheus, f'secure_cache_certificate_expiry_timestamp_seconds{{job="{EXPORTER_JOB}"}}'
    )
    result = _status_sh(stack)
    # `<label>  <not after (UTC), to the minute>  <days left>`
    rows = {
        cells[0]: cells[1]
        for cells in (re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines())
        if len(cells) == 3
    }
    for identity in WATCHED_CERTIFICATES:
        seen = value(
            prometheus,
            f'secure_cache_certificate_expiry_timestamp_seconds{{job="{EXPORTER_JOB}",'
            f'certificate="{identity}"}}',
        )
        assert seen is not None, identity
        minute = dt.datetime.fromtimestamp(seen, dt.UTC).strftime("%Y-%m-%d %H:%M")
        assert rows[f"{identity} client"] == minute, identity


@pytest.mark.fault
@pytest.mark.one_stack(
    "a stopped Redis reads as down through the exporter and the app's fallback the same way "
    "on every stack; the stack's faults themselves run on both (tests/e2e/test_e2e_faults.py)"
)
def test_monitoring__redis_stopped_fires_redis_down_and_fallback_then_resolves(
    prometheus: PrometheusServer, stack: Stack, docker_client: docker.DockerClient
) -> None:
    prometheus.wait_for(
        lambda: targets_up(prometheus) == {APP_JOB: 1.0, EXPORTER_JOB: 1.0},
        timeout=WAIT_S,
        what="both targets up",
    )
    docker_client.api.stop(stack.redis, timeout=30)
    try:
        # The app notices at its next command; a read through the API is one.
        appclient.get(stack, PROBE_KEYS[1])
        prometheus.wait_for(
            lambda: {"RedisDown", "CacheFallbackActive"} <= prometheus.alerts(),
            timeout=WAIT_S,
            what="RedisDown and CacheFallbackActive firing",
        )
        assert value(prometheus, "redis_up") == 0.0
    finally:
        docker_client.api.start(stack.redis)
    appclient.wait_for(
        f"{stack.app} to use Redis again",
        lambda: appclient.status(stack)["backend"] == "redis" or None,
        90,
    )
    prometheus.wait_for(
        lambda: not {"RedisDown", "CacheFallbackActive"} & prometheus.active_alerts(),
        timeout=WAIT_S,
        what="RedisDown and CacheFallbackActive resolved",
    )
