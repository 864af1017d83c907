"""The app's Prometheus metrics: names, values, closed label sets, and no secret in a scrape."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from infra import pki
from secure_cache.metrics import COUNTERS, SecurityEvents
from secure_cache.prometheus import (
    CERTIFICATE_ROLES,
    CacheMetrics,
    PoolState,
    certificate_collector,
    count_file_collector,
    earliest_not_after,
    event_families,
    route_label,
    size_class,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _samples(metrics: CacheMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _quiet_events() -> SecurityEvents:
    log = logging.getLogger("test_prometheus_metrics")
    log.disabled = True
    return SecurityEvents(log)


def test_every_security_counter__has_a_metric_family() -> None:
    snapshot = dict.fromkeys(COUNTERS, 1)
    exported = sum(sample.value for family in event_families(snapshot) for sample in family.samples)
    assert exported == len(COUNTERS), (
        "a SecurityEvents counter is not exported; map it in prometheus._EVENT_FAMILIES"
    )


def test_security_events__are_read_from_the_snapshot_at_scrape_time() -> None:
    events = _quiet_events()
    metrics = CacheMetrics(events)
    events.record("integrity_failure", key=b"cache:00:ff")
    events.record("integrity_failure", key=b"cache:00:ee")
    events.record("tls_failure")
    events.record("acl_denied")
    samples = _samples(metrics)
    assert samples[("secure_cache_integrity_failures_total", ())] == 2
    assert samples[("secure_cache_backend_failures_total", (("kind", "tls"),))] == 1
    assert samples[("secure_cache_backend_failures_total", (("kind", "auth"),))] == 0
    assert samples[("secure_cache_acl_denials_total", ())] == 1


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("/cache/{key}", "/cache/{key}"),
        ("/healthz", "/healthz"),
        ("/cache/customer-42", "other"),
        ("/etc/passwd", "other"),
    ],
)
def test_route_label__is_a_template_or_other(route: str, expected: str) -> None:
    assert route_label(route) == expected


def test_requests__are_counted_by_method_route_and_status() -> None:
    metrics = CacheMetrics(_quiet_events())
    metrics.observe_request("GET", "/cache/{key}", 200, 0.002)
    metrics.observe_request("GET", "/cache/{key}", 200, 0.003)
    metrics.observe_request("BREW", "/cache/raw-path", 999, 0.001)
    samples = _samples(metrics)
    ok = (("method", "GET"), ("route", "/cache/{key}"), ("status", "200"))
    assert samples[("secure_cache_http_request_duration_seconds_count", ok)] == 2
    other = (("method", "other"), ("route", "other"), ("status", "other"))
    assert samples[("secure_cache_http_request_duration_seconds_count", other)] == 1


def test_lookups_connects_envelopes_and_pool__are_exported() -> None:
    metrics = CacheMetrics(_quiet_events(), previous_keys=2, data_key_generation=7)
    metrics.lookup(hit=True)
    metrics.lookup(hit=False)
    metrics.lookup(hit=False)
    metrics.connected(0.004)
    metrics.sealed(100, 0.00002)
    metrics.opened(20_000, 0.0001)
    metrics.replayed(3)
    metrics.watch_pool(lambda: PoolState(open=4, in_use=1, max=16))
    samples = _samples(metrics)
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] == 1
    assert samples[("secure_cache_lookups_total", (("result", "miss"),))] == 2
    assert samples[("secure_cache_redis_connect_duration_seconds_count", ())] == 1
    seal = (("operation", "seal"), ("size", "1KiB"))
    assert samples[("secure_cache_envelope_duration_seconds_count", seal)] == 1
    opened = (("operation", "open"), ("size", "256KiB"))
    assert samples[("secure_cache_envelope_duration_seconds_count", opened)] == 1
    assert samples[("secure_cache_replayed_writes_total", ())] == 3
    assert samples[("secure_cache_redis_pool_connections", (("state", "in_use"),))] == 1
    assert samples[("secure_cache_redis_pool_max", ())] == 16
    assert samples[("secure_cache_data_key_generation", ())] == 7
    assert samples[("secure_cache_data_key_previous_keys", ())] == 2
    metrics.data_keys(previous=0, generation=8)  # rotation finished, keys reloaded
    samples = _samples(metrics)
    assert samples[("secure_cache_data_key_generation", ())] == 8
    assert samples[("secure_cache_data_key_previous_keys", ())] == 0


@pytest.mark.parametrize(
    ("nbytes", "label"), [(0, "1KiB"), (1024, "1KiB"), (1025, "16KiB"), (10 << 20, "more")]
)
def test_size_class__names_the_upper_bound(nbytes: int, label: str) -> None:
    assert size_class(nbytes) == label


def test_fallback__is_active_and_timed_while_entered() -> None:
    clock = FakeClock()
    metrics = CacheMetrics(_quiet_events(), clock=clock)
    metrics.fallback_entered()
    clock.now += 30
    assert _samples(metrics)[("secure_cache_fallback_active", ())] == 1
    assert _samples(metrics)[("secure_cache_fallback_seconds_total", ())] == 30
    metrics.fallback_left()
    clock.now += 100
    metrics.fallback_entered()
    clock.now += 5
    metrics.fallback_left()
    samples = _samples(metrics)
    assert samples[("secure_cache_fallback_active", ())] == 0
    assert samples[("secure_cache_fallback_seconds_total", ())] == 35


def test_certificates__expiry_of_ca_bundle_client_file_and_handshake(tmp_path: Path) -> None:
    ca_old = pki.create_ca("old CA", validity_days=10)
    ca_new = pki.create_ca("new CA", validity_days=400)
    client = pki.issue_client_certificate(ca_new, "app", validity_days=30)
    server = pki.issue_server_certificate(ca_new, "redis", dns_names=("redis",), validity_days=60)
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(ca_new.cert_pem + ca_old.cert_pem)
    client_file = tmp_path / "client.crt"
    client_file.write_bytes(client.cert_pem)
    metrics = CacheMetrics(_quiet_events(), ca_file=bundle, client_cert_file=client_file)
    name = "secure_cache_certificate_expiry_timestamp_seconds"
    assert (name, (("certificate", "server"),)) not in _samples(metrics)

    server_cert = x509.load_pem_x509_certificate(server.cert_pem)
    metrics.server_certificate(server_cert.public_bytes(Encoding.DER))
    samples = _samples(metrics)

    def expiry(pem: bytes) -> float:
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()

    assert samples[(name, (("certificate", "ca"),))] == expiry(ca_old.cert_pem)
    assert samples[(name, (("certificate", "client"),))] == expiry(client.cert_pem)
    assert samples[(name, (("certificate", "server"),))] == expiry(server.cert_pem)

    # The lifetime of the same certificates (the bundle's: the one expiring first), from
    # which monitoring/alerts.yml puts a short-lived certificate's renewal window.
    def lifetime(pem: bytes) -> float:
        cert = x509.load_pem_x509_certificate(pem)
        return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()

    life = "secure_cache_certificate_lifetime_seconds"
    assert samples[(life, (("certificate", "ca"),))] == lifetime(ca_old.cert_pem)
    assert samples[(life, (("certificate", "client"),))] == lifetime(client.cert_pem)
    assert samples[(life, (("certificate", "server"),))] == lifetime(server.cert_pem)
    assert lifetime(client.cert_pem) >= 30 * 86400


def test_certificates__renewed_file_shows_at_the_next_scrape(tmp_path: Path) -> None:
    ca = pki.create_ca("CA", validity_days=400)
    path = tmp_path / "client.crt"
    path.write_bytes(pki.issue_client_certificate(ca, "app", validity_days=5).cert_pem)
    metrics = CacheMetrics(_quiet_events(), client_cert_file=path)
    key = ("secure_cache_certificate_expiry_timestamp_seconds", (("certificate", "client"),))
    before = _samples(metrics)[key]
    path.write_bytes(pki.issue_client_certificate(ca, "app", validity_days=90).cert_pem)
    assert _samples(metrics)[key] > before + 80 * 86400


def test_certificates__unreadable_file_drops_the_series(tmp_path: Path) -> None:
    metrics = CacheMetrics(_quiet_events(), client_cert_file=tmp_path / "missing.crt")
    names = {name for name, _ in _samples(metrics)}
    assert "secure_cache_certificate_expiry_timestamp_seconds" not in names
    assert earliest_not_after(b"not a certificate") is None


def test_ca_bundle__counts_the_cas_trusted_two_during_a_rollover(tmp_path: Path) -> None:
    old = pki.create_ca("old CA", validity_days=400)
    new = pki.create_ca("new CA", validity_days=400)
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(old.cert_pem)
    metrics = CacheMetrics(_quiet_events(), ca_file=bundle)
    key = ("secure_cache_ca_bundle_certificates", ())
    assert _samples(metrics)[key] == 1
    bundle.write_bytes(old.cert_pem + new.cert_pem)  # introduced: both trusted
    assert _samples(metrics)[key] == 2
    bundle.write_bytes(new.cert_pem)  # retired
    assert _samples(metrics)[key] == 1
    bundle.unlink()  # unreadable: no sample, rather than a count of 0 that reads as steady
    assert key not in _samples(metrics)


def test_certificates__every_role_of_the_closed_set_is_exported_by_its_label(
    tmp_path: Path,
) -> None:
    """The exporter hands the collector the watched identities' copies (redis_exporter.py):
    each is exported under its own label, with its own notAfter."""
    ca = pki.create_ca("CA", validity_days=400)
    files: dict[str, Path] = {}
    expected: dict[str, float] = {}
    roles = [role for role in CERTIFICATE_ROLES if role != "server"]  # server: a handshake
    for days, role in enumerate(roles, start=3):
        pem = pki.issue_client_certificate(ca, role, validity_days=days).cert_pem
        files[role] = tmp_path / f"{role}.crt"
        files[role].write_bytes(pem)
        expected[role] = x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    assert {"healthcheck", "reload", "rotation"} <= set(roles), "positive control"
    registry = CollectorRegistry(auto_describe=True)
    registry.register(certificate_collector(files))  # type: ignore[arg-type]
    exposition = generate_latest(registry).decode()
    found = {
        sample.labels["certificate"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "secure_cache_certificate_expiry_timestamp_seconds"
        for sample in family.samples
    }
    assert found == expected


def test_registry__is_private_to_each_instance() -> None:
    first, second = CacheMetrics(_quiet_events()), CacheMetrics(_quiet_events())
    first.lookup(hit=True)
    hits = ("secure_cache_lookups_total", (("result", "hit"),))
    assert _samples(first)[hits] == 1
    assert _samples(second)[hits] == 0


def test_scrape__carries_no_key_value_or_secret(tmp_path: Path) -> None:
    """Every hook is fed inputs derived from distinctive secrets; none reaches the scrape."""
    key = "customer-7f3a9c-secret-key-name"
    value = b"value-b81d27-credit-card-4111111111111111"
    # checkov:skip=CKV_SECRET_6: a fake password no scrape may show
    password = "password-e4c1f0-do-not-leak"
    stored_name = f"cache:0011aabb:{key}".encode()
    ca = pki.create_ca("CA", validity_days=400)
    client = pki.issue_client_certificate(ca, "app", validity_days=30)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "client.crt").write_bytes(client.cert_pem)
    events = _quiet_events()
    metrics = CacheMetrics(
        events, ca_file=tmp_path / "ca.crt", client_cert_file=tmp_path / "client.crt"
    )
    events.record("integrity_failure", key=stored_name, detail=value.decode())
    events.record("auth_failure", kind="auth", password=password)
    events.record("acl_denied", key=stored_name)
    metrics.observe_request("GET", f"/cache/{key}", 200, 0.001)
    metrics.observe_request(key, "/cache/{key}", 404, 0.001)
    metrics.lookup(hit=False)
    metrics.sealed(len(value), 0.00001)
    body, _ = metrics.render()
    text = body.decode()
    for secret in (
        key,
        value.decode(),
        password,
        stored_name.decode(),
        "customer-7f3a9c",
        "b81d27",
        "e4c1f0",
    ):
        assert secret not in text, f"the scrape contains {secret!r}"
    assert "secure_cache_integrity_failures_total 1.0" in text


_PADDING = b"\n" * ((1 << 20) + 1)  # past the 1 MiB every configured file is held to
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape_within(seconds: float, files: dict[str, Path]) -> Samples:
    """A CacheMetrics on `files` and one scrape, in a thread (registering the collectors
    collects once too), so a read that never ends fails the test instead of hanging it."""
    done: list[Samples] = []

    def scrape() -> None:
        metrics = CacheMetrics(
            _quiet_events(),
            ca_file=files["ca_file"],
            client_cert_file=files["client_cert_file"],
            data_key_generation_file=files["data_key_generation_file"],
        )
        done.append(_samples(metrics))

    worker = threading.Thread(target=scrape, daemon=True)
    worker.start()
    worker.join(seconds)
    assert done, "the scrape did not return: it is still reading a material file"
    return done[0]


@pytest.mark.parametrize("kind", ["over 1 MiB", "fifo"])
def test_material_files__only_what_the_settings_loader_reads_is_read(
    tmp_path: Path, kind: str
) -> None:
    """The certificate and generation files are re-read at every scrape, under the rule the
    settings loader holds every configured file to (secure_cache.settings.read_file): a
    regular file of at most 1 MiB. A FIFO with no writer blocked the scrape forever, and a
    device such as /dev/zero would have been read until memory ran out."""
    ca = pki.create_ca("CA", validity_days=400)
    client = pki.issue_client_certificate(ca, "app", validity_days=30).cert_pem
    contents = {
        "ca_file": ca.cert_pem,
        "client_cert_file": client,
        "data_key_generation_file": b"4\n",
    }
    paths = {arg: tmp_path / arg for arg in contents}
    for arg, path in paths.items():
        if kind == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(contents[arg] + _PADDING)
    expiry = "secure_cache_certificate_expiry_timestamp_seconds"
    samples = _scrape_within(10, paths)
    assert not any(name == expiry for name, _ in samples)
    assert samples[("secure_cache_data_key_generation", ())] == 0
    # Positive control: the same files at their own size are read.
    for arg, path in paths.items():
        path.unlink()
        path.write_bytes(contents[arg])
    samples = _scrape_within(10, paths)
    assert (expiry, (("certificate", "client"),)) in samples
    assert (expiry, (("certificate", "ca"),)) in samples
    assert samples[("secure_cache_data_key_generation", ())] == 4


@pytest.mark.parametrize(
    "content", ["7\n", "x\n", "9" * 5000 + "\n"], ids=["count", "text", "5000 digits"]
)
def test_count_file__a_number_too_long_to_convert_is_no_count_not_a_failed_scrape(
    tmp_path: Path, content: str
) -> None:
    """A count file (ROTATING_ACL_USERS_FILE, the data-key generation) holding digits past
    Python's conversion limit (4300) made int() raise in the collector, and the exporter's or
    the app's whole /metrics (redis_up included) failed with it. Now: no sample, as for any
    file that holds no count."""
    path = tmp_path / "count"
    path.write_text(content)
    registry = CollectorRegistry()
    registry.register(count_file_collector("probe_count", "A count.", path))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    samples = [s.value for f in families for s in f.samples]
    assert samples == ([7.0] if content == "7\n" else [])
