"""What an outsider tries first against the HTTP API (`python -m secure_cache serve`, the real
process over loopback against the TLS fixture; the service fixture of test_cache_service.py).

Odd key names (glob characters the rotation pass's SCAN uses, dot segments, Unicode, the
longest allowed), many writers on one key, the token in the query string, and requests with
attacker-chosen methods and paths that must not grow /metrics (a series per distinct URL
would be a memory leak and would publish key names).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_cache_service import TOKEN, Service, service

__all__ = ["service"]  # the fixture, shared with test_cache_service.py

ODD_KEYS = [
    "*",
    "cache:*",
    "?[a-z]\\",
    "..",
    "../../etc/passwd",
    "a/b/../c",
    "ключ-鍵-🔑",
    " leading and trailing ",
    "\x00nul\x7f",
    "k" * 4096,
]


def _path(key: str) -> str:
    return "/cache/" + quote(key, safe="")


def _samples(service: Service) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    status, body, _ = service.request("GET", "/metrics")
    assert status == 200
    return [
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    ]


def _series(service: Service) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {(name, labels) for name, labels, _ in _samples(service)}


def test_odd_key_names__each_is_its_own_entry(service: Service) -> None:
    """No key is a pattern or a path: each stores and reads back only its own value."""
    for i, key in enumerate(ODD_KEYS):
        assert service.request("PUT", _path(key), f"value-{i}".encode())[0] == 204, key
    for i, key in enumerate(ODD_KEYS):
        status, body, _ = service.request("GET", _path(key))
        assert (status, body) == (200, f"value-{i}".encode()), key
    for key in ODD_KEYS:
        assert service.request("DELETE", _path(key))[0] == 204
    assert all(service.request("GET", _path(key))[0] == 404 for key in ODD_KEYS)


@pytest.mark.parametrize("key", ["k" * 4097, "é" * 2049], ids=["4097-ascii", "4098-utf8"])
def test_a_key_over_4096_bytes__is_refused_without_echoing_it(service: Service, key: str) -> None:
    status, body, _ = service.request("PUT", _path(key), b"v")
    assert status == 400
    assert key[:64].encode() not in body


def test_many_writers_and_readers_on_one_key__every_read_is_one_whole_written_value(
    service: Service,
) -> None:
    values = {f"writer-{i}-".encode() * (i + 1) for i in range(16)}
    path = _path("contended-key")
    assert service.request("PUT", path, b"initial")[0] == 204

    def write(value: bytes) -> int:
        return service.request("PUT", path, value)[0]

    def read(_: int) -> tuple[int, bytes]:
        status, body, _reply = service.request("GET", path)
        return status, body

    with ThreadPoolExecutor(8) as pool:
        writes = pool.map(write, sorted(values) * 4)
        reads = list(pool.map(read, range(64)))
    assert set(writes) == {204}
    assert {status for status, _ in reads} == {200}
    assert {body for _, body in reads} <= values | {b"initial"}
    integrity = [
        value
        for name, labels, value in _samples(service)
        if name == "secure_cache_integrity_failures_total"
    ]
    assert integrity, "positive control: the integrity counter is exported"
    assert set(integrity) == {0.0}


def test_the_token_in_the_query_string__is_not_a_credential(service: Service) -> None:
    for path in (f"/metrics?token={TOKEN}", f"/cache/q?access_token={TOKEN}"):
        status, body, _ = service.request("GET", path, headers={})
        assert status == 401
        assert TOKEN.encode() not in body


def _attack_round(service: Service, round_: int) -> None:
    """Distinct methods, paths and keys, with and without the token."""
    for i in range(20):
        tag = f"{round_}x{i}"
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            service.request(f"M{tag}ETHOD", f"/probe-path-{tag}", headers=headers)
            service.request("GET", f"/cache/probe-key-{tag}", headers=headers)
            service.request("GET", f"/probe-{tag}/../metrics", headers=headers)


def test_attacker_chosen_methods_and_paths__add_no_series_per_request(service: Service) -> None:
    """A first round may add the closed sets' `other` series; a second round of new methods,
    paths and keys adds none, and no label holds what the client sent."""
    _attack_round(service, 1)
    _series(service)  # the scrape's own series exist from here on
    before = _series(service)
    _attack_round(service, 2)
    after = _series(service)
    assert after == before, f"new series: {sorted(after - before)[:5]}"
    text = repr(sorted(after))
    assert "probe-path" not in text
    assert "probe-key" not in text
    assert "ETHOD" not in text
