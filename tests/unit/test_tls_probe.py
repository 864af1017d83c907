"""app/secure_cache/tls_probe.py without a server: what is exported and how often it probes
(the probes against a real redis-server: tests/integration/test_redis_config_drift.py)."""

from __future__ import annotations

import ssl
from pathlib import Path

from secure_cache.redis_exporter import tls_policy_families
from secure_cache.tls_probe import ProbeTarget, TlsPolicy, TlsPolicyProbe


def _samples(policy: TlsPolicy) -> dict[str, float]:
    return {s.name: s.value for f in tls_policy_families(policy) for s in f.samples}


def test_a_probe_that_concluded_nothing_has_no_sample() -> None:
    assert _samples(TlsPolicy(None, None)) == {}
    assert _samples(TlsPolicy(False, True)) == {
        "redis_tls_client_certificate_required": 0,
        "redis_tls_protocol_below_floor_accepted": 1,
    }


class _Counting(TlsPolicyProbe):
    calls = 0

    def probe(self) -> TlsPolicy:
        self.calls += 1
        return TlsPolicy(True, False)


def test_the_listener_is_probed_at_most_once_per_interval() -> None:
    """Each probe costs Redis a handshake and a warning line in its log; scrapes in between
    answer the last result."""
    now = [0.0]
    target = ProbeTarget("redis", 6380, "ca", "crt", "key", ssl.TLSVersion.TLSv1_3)
    probe = _Counting(target, interval=300.0, clock=lambda: now[0])
    for now[0] in (0.0, 10.0, 299.0):
        assert probe.policy() == TlsPolicy(True, False)
    assert probe.calls == 1
    now[0] = 300.0
    probe.policy()
    assert probe.calls == 2


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
        assert TlsPolicyProbe(target, interval=0).policy() == TlsPolicy(None, None), ca.name
