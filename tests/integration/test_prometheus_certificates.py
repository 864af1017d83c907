"""Certificate expiry metrics from real material: the server's as presented in a handshake."""

from __future__ import annotations

import logging
import socket

from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics
from tests.support.tls_redis import TlsRedisServer


def _expiry(metrics: CacheMetrics) -> dict[str, float]:
    body = metrics.render()[0].decode()
    return {
        s.labels["certificate"]: s.value
        for family in text_string_to_metric_families(body)
        if family.name == "secure_cache_certificate_expiry_timestamp_seconds"
        for s in family.samples
    }


def test_server_certificate__expiry_from_the_tls_handshake(tls_redis: TlsRedisServer) -> None:
    quiet = logging.getLogger("test_prometheus_certificates")
    quiet.disabled = True
    material = tls_redis.material
    metrics = CacheMetrics(
        SecurityEvents(quiet), ca_file=material.ca_file, client_cert_file=material.app.cert_file
    )
    context = tls_redis.client_ssl_context()
    with (
        socket.create_connection((tls_redis.host, tls_redis.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    metrics.server_certificate(der)

    def not_after(pem: bytes) -> float:
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()

    assert _expiry(metrics) == {
        "ca": not_after(material.ca_file.read_bytes()),
        "client": not_after(material.app.cert_file.read_bytes()),
        "server": not_after(material.server.cert_file.read_bytes()),
    }
