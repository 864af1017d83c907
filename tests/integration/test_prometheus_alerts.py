"""The alert rules in a real Prometheus, scraping the app's metrics and the Redis exporter.

Everything runs on loopback: a TLS-only redis-server with the exporter's ACL user, a real
SecureCache (its SecurityEvents exported by CacheMetrics, served by CacheMetrics.wsgi_app()),
the exporter over HTTP, and Debian's Prometheus loading monitoring/alerts.yml with `for:`
shortened to seconds (tests/support/prometheus_server.py). Healthy, nothing is pending or
firing; provoked, the matching alerts fire. The exporter reports every certificate it is
configured with, as deployed: its own and its copies of the health check's, the reload jobs'
and the rotation pass's (HEALTHCHECK_CERT_FILE, ...; infra/components/exporter.py), so a
renewal, a missing copy and a second CA are each seen through a real scrape.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import start_http_server

from infra import pki
from secure_cache import SecureCache
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CERTIFICATE_ROLES, CacheMetrics
from secure_cache.redis_exporter import (
    WATCHED_CERTIFICATES,
    connect,
    probe_target,
    registry_for,
)
from secure_cache.tls_probe import TlsPolicyProbe
from tests.support.cache_env import cache_environ, raw_client
from tests.support.exporter_redis import ExporterRedis, running_exporter_redis
from tests.support.prometheus_server import PROMETHEUS, PrometheusServer
from tests.support.tls_redis import free_port

KEY = f"customer-{uuid.uuid4().hex}"
VALUE = f"balance-{uuid.uuid4().hex}".encode()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


class Stack:
    """The monitored pieces and the Prometheus watching them."""

    def __init__(self, tmp: Path, redis: ExporterRedis) -> None:
        self.redis = redis
        self.events = SecurityEvents()
        # Certificates far from expiry, so a healthy stack raises no expiry alert (the test
        # server's own material is valid for two days only).
        ca = pki.create_ca("monitoring test CA", validity_days=400)
        (tmp / "ca.crt").write_bytes(ca.cert_pem)
        client = pki.issue_client_certificate(ca, "app", validity_days=300)
        (tmp / "client.crt").write_bytes(client.cert_pem)
        self.metrics = CacheMetrics(
            self.events, ca_file=tmp / "ca.crt", client_cert_file=tmp / "client.crt"
        )
        self.ca = ca
        self.ca_file = tmp / "ca.crt"
        # The watched copies, named to the exporter as the stack names them; its own CA
        # bundle and certificate for the expiry metrics are long-lived copies, like the app's.
        # (In a directory of their own: the exporter's real certificate and key are in tmp.)
        (tmp / "watched").mkdir()
        self.watched: dict[str, Path] = {}
        for identity in (*WATCHED_CERTIFICATES, "exporter"):
            self.watched[identity] = tmp / "watched" / f"{identity}.crt"
            self.issue(identity, validity_days=300)
        settings = redis.settings(
            **{var: str(self.watched[role]) for role, var in WATCHED_CERTIFICATES.items()}
        )
        # As the deployment writes it after Redis reloaded its users: no password rotating.
        self.passwords_rotating = tmp / "watched" / "acl-users.rotating"
        self.passwords_rotating.write_text("0\n")
        certificates = {
            **settings.certificate_files(),
            "ca": self.ca_file,
            "client": self.watched["exporter"],
        }
        self.cache = SecureCache.from_env(
            cache_environ(redis.server, tmp / "secrets"), events=self.events
        )
        app_port = free_port()
        self.app_http: WSGIServer = make_server(
            "127.0.0.1", app_port, self.metrics.wsgi_app(), handler_class=_QuietHandler
        )
        threading.Thread(target=self.app_http.serve_forever, daemon=True).start()
        self.exporter_client = connect(redis.settings())
        exporter_port = free_port()
        # With the TLS drift probes on their thread, as the deployed exporter runs
        # (redis_exporter.main).
        tls_probe = TlsPolicyProbe(probe_target(redis.settings()))
        self.probes_stopped = threading.Event()
        self.probe_thread = tls_probe.start(self.probes_stopped)
        self.exporter_http, self.exporter_thread = start_http_server(
            exporter_port,
            addr="127.0.0.1",
            registry=registry_for(
                self.exporter_client,
                certificates,
                tls_probe=tls_probe,
                passwords_rotating_file=self.passwords_rotating,
            ),
        )
        prom_dir = tmp / "prometheus"
        prom_dir.mkdir()
        self.prometheus = PrometheusServer(
            prom_dir,
            {
                "secure-cache": f"127.0.0.1:{app_port}",
                "redis-exporter": f"127.0.0.1:{exporter_port}",
            },
        )

    def issue(self, identity: str, *, validity_days: int) -> None:
        """A new certificate for `identity` in its file, as an in-place renewal writes it."""
        pem = pki.issue_client_certificate(self.ca, identity, validity_days=validity_days).cert_pem
        self.watched[identity].write_bytes(pem)

    def close(self) -> None:
        self.prometheus.stop()
        self.probes_stopped.set()
        self.probe_thread.join(10)
        self.app_http.shutdown()
        self.app_http.server_close()
        self.exporter_http.shutdown()
        self.exporter_thread.join()
        self.exporter_client.close()
        self.cache.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which(PROMETHEUS) is None:
        pytest.skip("prometheus is not installed; run scripts/bootstrap.sh as root")
    tmp = tmp_path_factory.mktemp("prometheus-alerts")
    with running_exporter_redis(tmp) as redis:
        monitored = Stack(tmp, redis)
        try:
            monitored.prometheus.start()
            yield monitored
        finally:
            monitored.close()


def _evaluated_with_data(prometheus: PrometheusServer) -> bool:
    """Both targets up with a few samples, and every rule group evaluated since."""
    result = prometheus.api("query", query="count_over_time(up[1m]) >= 3 and up == 1")["result"]
    return {r["metric"]["job"] for r in result} == {"secure-cache", "redis-exporter"}


def test_healthy_stack__raises_no_alert(stack: Stack) -> None:
    prom = stack.prometheus
    stack.cache.set(KEY, VALUE)
    assert stack.cache.get(KEY) == VALUE
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    groups = prom.api("rules")["groups"]
    seen = {g["name"]: g["lastEvaluation"] for g in groups}
    prom.wait_for(
        lambda: all(g["lastEvaluation"] != seen[g["name"]] for g in prom.api("rules")["groups"]),
        what="a rule evaluation over the scraped data",
    )
    assert prom.active_alerts() == set()


def _firing(prom: PrometheusServer, alertname: str) -> set[tuple[str, str]]:
    """(job, certificate) of each firing `alertname`."""
    return {
        (a["labels"]["job"], a["labels"].get("certificate", ""))
        for a in prom.api("alerts")["alerts"]
        if a["labels"]["alertname"] == alertname and a["state"] == "firing"
    }


def test_watched_certificate_near_expiry__fires_naming_it_and_resolves_once_renewed(
    stack: Stack,
) -> None:
    """The rotation pass's certificate, due alone (issued at another time than the others):
    only the exporter's copy shows it."""
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    stack.issue("rotation", validity_days=3)
    due = ("redis-exporter", "rotation")
    try:
        # (Not CertificateExpiresSoon: a 3-day certificate's renewal window is its last third,
        # one day.)
        prom.wait_for(
            lambda: due in _firing(prom, "CertificateExpiresVerySoon"),
            what="CertificateExpiresVerySoon for the rotation certificate",
        )
        assert _firing(prom, "CertificateExpiresVerySoon") == {due}
    finally:
        stack.issue("rotation", validity_days=300)
    prom.wait_for(
        lambda: not {"CertificateExpiresSoon", "CertificateExpiresVerySoon"} & prom.active_alerts(),
        what="the renewed certificate's alerts resolved",
    )


def test_missing_watched_copy__fires_certificate_expiry_unknown(stack: Stack) -> None:
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    copy = stack.watched["reload"]
    kept = copy.read_bytes()
    copy.unlink()
    try:
        prom.wait_for(
            lambda: _firing(prom, "CertificateExpiryUnknown") == {("redis-exporter", "reload")},
            what="CertificateExpiryUnknown for the reload certificate",
        )
    finally:
        copy.write_bytes(kept)
    prom.wait_for(
        lambda: "CertificateExpiryUnknown" not in prom.active_alerts(),
        what="CertificateExpiryUnknown resolved",
    )


def test_two_cas_trusted__fire_ca_rollover_unfinished(stack: Stack) -> None:
    """A rollover's introduce step left alone (`for: 1d`, shortened here like every `for`)."""
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    kept = stack.ca_file.read_bytes()
    stack.ca_file.write_bytes(kept + pki.create_ca("next CA", validity_days=400).cert_pem)
    try:
        prom.wait_for(
            lambda: "CaRolloverUnfinished" in prom.alerts(), what="CaRolloverUnfinished firing"
        )
    finally:
        stack.ca_file.write_bytes(kept)
    prom.wait_for(
        lambda: "CaRolloverUnfinished" not in prom.active_alerts(),
        what="CaRolloverUnfinished resolved",
    )


def test_passwords_left_rotating__fire_password_rotation_unfinished(stack: Stack) -> None:
    """ROTATE written and no SET after it (`for: 1d`, shortened here like every `for`)."""
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    stack.passwords_rotating.write_text("5\n")
    try:
        prom.wait_for(
            lambda: "PasswordRotationUnfinished" in prom.alerts(),
            what="PasswordRotationUnfinished firing",
        )
    finally:
        stack.passwords_rotating.write_text("0\n")
    prom.wait_for(
        lambda: "PasswordRotationUnfinished" not in prom.active_alerts(),
        what="PasswordRotationUnfinished resolved",
    )


def test_provoked_events__fire_their_alerts(stack: Stack) -> None:
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    # A value tampered with at rest: the client serves a miss and counts it.
    stack.cache.set(KEY, VALUE)
    raw = raw_client(stack.redis.server)
    raw.set(stack.cache.stored_name(KEY), b"\x01tampered")
    raw.close()
    assert stack.cache.get(KEY) is None
    # Someone guessing passwords, and a command the ACL refuses.
    for _ in range(8):
        stack.redis.wrong_password()
    stack.redis.denied_key()
    # The client does not call the fallback hooks yet (wiring awaits the core refactor):
    # the hook stands in for the switch to the memory fallback.
    stack.metrics.fallback_entered()
    expected = {
        "CacheIntegrityFailure",
        "RedisAuthFailureBurst",
        "RedisAclDenials",
        "CacheFallbackActive",
    }
    prom.wait_for(lambda: expected <= prom.alerts(), what=f"{expected} firing")
    assert "RedisDown" not in prom.active_alerts()


def test_stopped_redis__fires_redis_down(stack: Stack) -> None:
    prom = stack.prometheus
    stack.redis.server.stop()
    try:
        prom.wait_for(lambda: "RedisDown" in prom.alerts(), what="RedisDown firing")
    finally:
        stack.redis.server.start()
    prom.wait_for(lambda: "RedisDown" not in prom.active_alerts(), what="RedisDown resolved")


def test_stored_series__carry_no_key_value_or_secret(stack: Stack) -> None:
    prom = stack.prometheus
    prom.wait_for(lambda: _evaluated_with_data(prom), what="both targets scraped")
    series = prom.api("series", **{"match[]": '{__name__=~"secure_cache_.+|redis_.+|up"}'})
    text = json.dumps(series)
    assert "secure_cache_integrity_failures_total" in text
    assert "redis_errors_total" in text
    # The certificate label holds a closed set: which certificate, never its content.
    stored = set(prom.api("label/certificate/values"))
    assert {"ca", "client", *WATCHED_CERTIFICATES} <= stored, "positive control"
    assert stored <= set(CERTIFICATE_ROLES), stored
    material = stack.redis.server.material
    for secret in (
        KEY,
        VALUE.decode(),
        stack.cache.stored_name(KEY).decode(),
        material.app_password,
        material.data_key,
        stack.redis.password,
    ):
        assert secret not in text
