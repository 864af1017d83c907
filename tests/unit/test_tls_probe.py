"""app/secure_cache/tls_probe.py without a server: what is exported and how often it probes
(the probes against a real redis-server: tests/integration/test_redis_config_drift.py)."""

from __future__ import annotations

import ssl

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
