"""What Redis's TLS listener accepts now, seen from outside: the exporter's drift probes.

The reload identity may `CONFIG SET` (infra/redis_acl.py; Redis 7.0 cannot narrow it), and
three of the settings it could change are neither in INFO nor readable with the exporter's
grant (`INFO`, `ACL LOG`): `tls-auth-clients`, `tls-protocols` and `tls-ciphers`. What they
decide is visible from outside, so the exporter asks the listener itself (attack pass of
2026-11-30 on a deployed stack: `tls-auth-clients no` let a client without a certificate reach
`AUTH`; `tls-protocols "TLSv1 TLSv1.1 ..."` with `tls-ciphers "ALL:@SECLEVEL=0"` let a
TLS 1.1 handshake through):

- `client_certificate_required`: a handshake without a client certificate, then `PING`.
  Redis refusing the handshake (TLS 1.2) or closing before it answers (TLS 1.3, where the
  client sends its certificate after the server's Finished) means required; any RESP answer
  (`-NOAUTH`) means not;
- `protocol_below_floor_accepted`: a handshake, with the exporter's own certificate, capped at
  the version below the environment's floor (TLS 1.1 for development, TLS 1.2 for
  production) and offering every cipher at OpenSSL's security level 0, so that this side never
  refuses what Redis might accept.

Neither sends AUTH: no password is spent and nothing lands in the ACL LOG. Each probe is one
TCP connection and one handshake; Redis logs the refusal as one warning line ("Error
accepting a client connection"), so the exporter probes at most once per PROBE_INTERVAL_S, on
a thread of its own, and reports the last answer in between (TlsPolicyProbe).
`protected-mode` is not probed: Redis 7.0 applies it only while the `default` user is `nopass`
and enabled, and the stack's `default` user is off in the ACL file, which the reload identity
can only load again as it is (docs/monitoring.md).

A probe that cannot reach Redis (refused, timed out) concludes nothing: its value is None and
the exporter exports no sample for it, as for any other unknown.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S: Final = 300.0
# After a probe that concluded nothing: soon, but a broken handshake still costs Redis only a
# log line per RETRY_S (and RedisTlsDriftUnknown says so if it lasts).
RETRY_S: Final = 30.0
TIMEOUT_S: Final = 3.0
# The versions just below each floor the stack allows (infra/profiles.py).
BELOW_FLOOR: Final = {
    ssl.TLSVersion.TLSv1_2: ssl.TLSVersion.TLSv1_1,
    ssl.TLSVersion.TLSv1_3: ssl.TLSVersion.TLSv1_2,
}


@dataclass(frozen=True)
class TlsPolicy:
    """What the listener accepted at the last probe (None: the probe concluded nothing)."""

    client_certificate_required: bool | None
    protocol_below_floor_accepted: bool | None


UNKNOWN: Final = TlsPolicy(None, None)


@dataclass(frozen=True)
class ProbeTarget:
    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str
    min_tls_version: ssl.TLSVersion


def _context(target: ProbeTarget, *, certificate: bool) -> ssl.SSLContext | None:
    """None when the material cannot be loaded: a file missing, or a certificate and key that
    do not match, read across the switch of a material rewrite (infra/components/material.py).
    The probe then concludes nothing; raising would fail the whole scrape, redis_up too."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(target.ca_file)
        if certificate:
            context.load_cert_chain(target.cert_file, target.key_file)
    except OSError:  # ssl.SSLError included
        return None
    return context


def _handshake(
    target: ProbeTarget, context: ssl.SSLContext, talk: Callable[[ssl.SSLSocket], bool]
) -> bool | None:
    """One connection and handshake with `context`: `talk`'s answer once it completed, False
    when Redis refused it, None when nothing was learnt (unreachable, no answer, or a server
    that is not our Redis)."""
    try:
        raw = socket.create_connection((target.host, target.port), TIMEOUT_S)
    except OSError:
        return None
    with raw:
        try:
            with context.wrap_socket(raw, server_hostname=target.host) as tls:
                return talk(tls)
        except (TimeoutError, ssl.SSLCertVerificationError):
            return None
        except (ssl.SSLError, ConnectionError):
            return False


def _answers_ping(tls: ssl.SSLSocket) -> bool:
    """Whether Redis answers a PING (with anything RESP). An empty read is the server closing
    the connection: the TLS 1.3 refusal of a missing client certificate, seen late."""
    tls.sendall(b"PING\r\n")
    return tls.recv(64)[:1] in (b"-", b"+")


def client_certificate_required(target: ProbeTarget) -> bool | None:
    context = _context(target, certificate=False)
    if context is None:
        return None
    context.minimum_version = target.min_tls_version
    answered = _handshake(target, context, _answers_ping)
    return None if answered is None else not answered


def protocol_below_floor_accepted(target: ProbeTarget) -> bool | None:
    below = BELOW_FLOOR.get(target.min_tls_version)
    if below is None:
        return None
    context = _context(target, certificate=True)
    if context is None:
        return None
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is what is probed for
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = below
    context.set_ciphers("ALL:@SECLEVEL=0")
    return _handshake(target, context, lambda _tls: True)


class TlsPolicyProbe:
    """Probes the listener on a thread of its own, once per `interval` (start), or when asked
    (refresh); `policy()` answers the last result at once. A scrape never waits for a probe:
    two connections and two handshakes, TIMEOUT_S each, could take longer than Prometheus's
    scrape timeout and the exporter's own 3 s health check, and a probe run inside the scrape
    held the scrape lock for as long."""

    def __init__(
        self, target: ProbeTarget, *, interval: float = PROBE_INTERVAL_S, retry: float = RETRY_S
    ) -> None:
        self.target = target
        self.interval = interval
        self.retry = min(retry, interval)
        self._last = UNKNOWN  # replaced whole, so a reader sees one probe's answers

    def policy(self) -> TlsPolicy:
        return self._last

    def refresh(self) -> TlsPolicy:
        """Probe now. A probe that fails unexpectedly concludes nothing (RedisTlsDriftUnknown
        fires if that lasts), and the next one runs as planned: the thread never dies."""
        try:
            self._last = self.probe()
        except Exception as exc:  # any failure is "unknown", not a dead thread
            logger.warning("event=tls_probe_failed error=%s", type(exc).__name__)
            self._last = UNKNOWN
        return self._last

    def start(self, stopped: threading.Event) -> threading.Thread:
        """Probe now and then every `interval` until `stopped` is set; after a probe that
        concluded nothing (Redis not up yet when the exporter starts, material being
        rewritten), again after `retry`."""

        def run() -> None:
            while True:
                answer = self.refresh()
                known = None not in (
                    answer.client_certificate_required,
                    answer.protocol_below_floor_accepted,
                )
                if stopped.wait(self.interval if known else self.retry):
                    return

        thread = threading.Thread(target=run, name="tls-drift-probe", daemon=True)
        thread.start()
        return thread

    def probe(self) -> TlsPolicy:
        return TlsPolicy(
            client_certificate_required=client_certificate_required(self.target),
            protocol_below_floor_accepted=protocol_below_floor_accepted(self.target),
        )


__all__ = [
    "BELOW_FLOOR",
    "PROBE_INTERVAL_S",
    "RETRY_S",
    "UNKNOWN",
    "ProbeTarget",
    "TlsPolicy",
    "TlsPolicyProbe",
    "client_certificate_required",
    "protocol_below_floor_accepted",
]
