"""The client's metric hooks (core.py call sites feeding prometheus.CacheMetrics): what each
operation records, and that without metrics attached nothing is recorded anywhere."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from secure_cache.core import CacheCore
from secure_cache.errors import BackendUnavailable
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics
from secure_cache.resp import JOIN_BYTES
from tests.support.cache_env import CORE_DATA_KEY, FakeClock, core_settings

KEY = CORE_DATA_KEY
OLD = bytes(range(50, 82))
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _core(clock: FakeClock | None = None, **changes: Any) -> tuple[CacheCore, CacheMetrics]:
    log = logging.getLogger("test_prometheus_hooks")
    log.disabled = True
    core = CacheCore(
        core_settings(**changes), events=SecurityEvents(log), clock=clock or FakeClock(500.0)
    )
    metrics = CacheMetrics(core.events, clock=clock or FakeClock(500.0))
    core.metrics = metrics
    return core, metrics


def _samples(metrics: CacheMetrics) -> Samples:
    body, _ = metrics.render()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _envelope(samples: Samples, operation: str) -> float:
    name = "secure_cache_envelope_duration_seconds_count"
    return samples.get((name, (("operation", operation), ("size", "1KiB"))), 0)


def _sealed(core: CacheCore, key: str, value: bytes) -> bytes:
    name = core.stored_name(key)
    return core.keyring.seal(name, key.encode(), value)


def test_get__counts_hits_and_misses_and_times_the_open() -> None:
    core, metrics = _core()
    envelope = _sealed(core, "k", b"v")
    assert core.get("k")[2](envelope) == b"v"
    assert core.get("k")[2](None) is None
    assert core.get("k")[2](b"tampered" + envelope) is None  # an integrity failure is a miss
    samples = _samples(metrics)
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] == 1
    assert samples[("secure_cache_lookups_total", (("result", "miss"),))] == 2
    assert _envelope(samples, "open") == 1  # the failed open is not timed


def test_get_during_rotation__counts_like_a_plain_get() -> None:
    core, metrics = _core(previous_keys=(OLD,))
    envelope = _sealed(core, "k", b"v")
    assert core.get("k")[2]([envelope, None]) == b"v"
    assert core.get("k")[2]([None, None]) is None
    samples = _samples(metrics)
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] == 1
    assert samples[("secure_cache_lookups_total", (("result", "miss"),))] == 1


def test_get_many__counts_each_wanted_key() -> None:
    core, metrics = _core()
    found = core.get_many(["a", "b", "c"])[2]([_sealed(core, "a", b"1"), None, None])
    assert found == {"a": b"1"}
    samples = _samples(metrics)
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] == 1
    assert samples[("secure_cache_lookups_total", (("result", "miss"),))] == 2


def test_set_and_set_many__time_each_seal() -> None:
    core, metrics = _core()
    core.set("k", b"v" * 100, None)
    core.set("large", b"v" * JOIN_BYTES, None)  # sealed in place
    batch = core.set_many({"a": b"1", "b": b"2", "c": b"3" * JOIN_BYTES}, None)[0]

    def seals() -> float:
        name, op = "secure_cache_envelope_duration_seconds_count", ("operation", "seal")
        return sum(v for (n, labels), v in _samples(metrics).items() if n == name and op in labels)

    list(batch)  # a batch larger than one write seals as it is written
    assert seals() == 5


def test_fallback__entered_once_left_on_recovery_with_the_replayed_writes() -> None:
    clock = FakeClock(500.0)
    core, metrics = _core(clock)
    core.failed(BackendUnavailable("connection", "refused"))
    core.memory.set("a", b"1", None)
    core.memory.set("b", b"2", None)
    clock.now += 4
    core.failed(BackendUnavailable("timeout", "again"))  # still the same episode
    samples = _samples(metrics)
    assert samples[("secure_cache_fallback_active", ())] == 1
    assert samples[("secure_cache_fallback_seconds_total", ())] == 4
    core.replay()
    core.recovered()
    clock.now += 100
    samples = _samples(metrics)
    assert samples[("secure_cache_fallback_active", ())] == 0
    assert samples[("secure_cache_fallback_seconds_total", ())] == 4
    assert samples[("secure_cache_replayed_writes_total", ())] == 2


def test_without_metrics__the_core_records_nothing_and_answers_the_same() -> None:
    core, metrics = _core()
    core.metrics = None
    envelope = _sealed(core, "k", b"v")
    assert core.get("k")[2](envelope) == b"v"
    core.set("k", b"v", None)
    core.failed(BackendUnavailable("connection", "refused"))
    samples = _samples(metrics)
    assert samples[("secure_cache_lookups_total", (("result", "hit"),))] == 0
    assert _envelope(samples, "seal") == 0
    assert samples[("secure_cache_fallback_active", ())] == 0
