"""app/secure_cache/tls_probe.py without a server: what is exported, when it probes
(the probes against a real redis-server: tests/integration/test_redis_config_drift.py)."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

from secure_cache.redis_exporter import tls_policy_families
from secure_cache.tls_probe import UNKNOWN, ProbeTarget, TlsPolicy, TlsPolicyProbe


def _samples(policy: TlsPolicy) -> dict[str, float]:
    return {s.name: s.value for f in tls_policy_families(policy) for s in f.samples}


def test_a_probe_that_concluded_nothing_has_no_sample() -> None:
    assert _samples(TlsPolicy(None, None)) == {}
    assert _samples(TlsPolicy(False, True)) == {
        "redis_tls_client_certificate_required": 0,
        "redis_tls_protocol_below_floor_accepted": 1,
    }


_TARGET = ProbeTarget("redis", 6380, "ca", "crt", "key", ssl.TLSVersion.TLSv1_3)


class _Held(TlsPolicyProbe):
    """A probe that answers only when the test lets it (at most 10 s), counting its runs."""

    def __init__(
        self, *, interval: float, retry: float = 30.0, fail: bool = False, unknown: int = 0
    ) -> None:
        super().__init__(_TARGET, interval=interval, retry=retry)
        self.release = threading.Event()
        self.ran = threading.Semaphore(0)
        self.fail = fail
        self.unknown = unknown  # how many first probes conclude nothing

    def probe(self) -> TlsPolicy:
        self.release.wait(10)
        self.ran.release()
        if self.fail:
            raise ssl.SSLError("unexpected")
        if self.unknown:
            self.unknown -= 1
            return UNKNOWN
        return TlsPolicy(True, False)


def test_a_scrape_never_waits_for_a_probe() -> None:
    """A probe is two connections and two handshakes (seconds each when Redis is slow): run
    inside the scrape, it could outlast the scrape timeout and the health check. The answer
    until the first probe ends is 'unknown' (no sample), then the probe's."""
    stopped = threading.Event()
    probe = _Held(interval=300.0)
    thread = probe.start(stopped)
    try:
        assert probe.policy() == UNKNOWN, "answered while the probe is still running"
        probe.release.set()
        assert probe.ran.acquire(timeout=10)
        thread.join(0.5)  # the first answer is stored before the thread waits its interval
        assert probe.policy() == TlsPolicy(True, False)
    finally:
        stopped.set()
        thread.join(10)
    assert not thread.is_alive(), "the thread ends when the exporter stops"


def test_the_listener_is_probed_once_per_interval_not_per_scrape() -> None:
    """Each probe costs Redis a handshake and a warning line in its log: scrapes read the last
    answer, they do not probe."""
    stopped = threading.Event()
    probe = _Held(interval=300.0)
    probe.release.set()
    thread = probe.start(stopped)
    try:
        assert probe.ran.acquire(timeout=10)
        for _ in range(100):
            probe.policy()
        assert not probe.ran.acquire(timeout=0.2), "a second probe inside the interval"
    finally:
        stopped.set()
        thread.join(10)


def test_a_probe_that_concluded_nothing_is_retried_before_the_interval() -> None:
    """Redis may not be up yet when the exporter starts: 'unknown' for the whole interval
    would fire RedisTlsDriftUnknown on a healthy stack."""
    stopped = threading.Event()
    probe = _Held(interval=300.0, retry=0.01, unknown=1)
    probe.release.set()
    thread = probe.start(stopped)
    try:
        assert probe.ran.acquire(timeout=10)
        assert probe.ran.acquire(timeout=10), "not retried"
        thread.join(0.5)
        assert probe.policy() == TlsPolicy(True, False)
        assert not probe.ran.acquire(timeout=0.2), "a known answer waits the interval"
    finally:
        stopped.set()
        thread.join(10)


def test_a_probe_that_fails_unexpectedly_concludes_nothing_and_the_next_one_runs() -> None:
    stopped = threading.Event()
    probe = _Held(interval=300.0, retry=0.01, fail=True)
    probe.release.set()
    thread = probe.start(stopped)
    try:
        assert probe.ran.acquire(timeout=10)
        assert probe.ran.acquire(timeout=10), "the thread died with the first failure"
        assert probe.policy() == UNKNOWN
    finally:
        stopped.set()
        thread.join(10)


def test_material_that_cannot_be_loaded_concludes_nothing_and_fails_no_scrape(
    tmp_path: Path,
) -> None:
    """The probe reads the exporter's files at each run. Across a material rewrite (the
    `..data` switch, then the old revision removed) a file can be gone, or a certificate can
    be read beside the other revision's key: before, the exception left collect() and failed
    the whole scrape (redis_up included) instead of this probe concluding nothing."""
    garbage = tmp_path / "not-a-ca.crt"
    garbage.write_text("not a certificate\n")
    for ca in (tmp_path / "gone" / "ca.crt", garbage):
        target = ProbeTarget(
            "127.0.0.1", 1, str(ca), str(tmp_path / "x.crt"), str(tmp_path / "x.key"),
            ssl.TLSVersion.TLSv1_3,
        )  # fmt: skip
        assert TlsPolicyProbe(target).refresh() == UNKNOWN, ca.name
