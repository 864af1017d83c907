"""The app's Prometheus metrics, on a registry of their own (`prometheus-client`).

Nothing here touches the process-global default registry: a `CacheMetrics` owns a
`CollectorRegistry`, so two caches in one process (tests, a service with two backends) never
share or clash over series, and importing this module registers nothing.

What is exported (names follow https://prometheus.io/docs/practices/naming/: base units,
`_total` for counters, `_seconds`/`_bytes` suffixes, timestamps as seconds since the epoch):

    secure_cache_certificate_expiry_timestamp_seconds{certificate="ca|server|client"}
        notAfter of the CA bundle (its earliest-expiring certificate), of the server
        certificate as presented in the latest TLS handshake, and of the app's own client
        certificate. The CA and client files are re-read at each scrape, so an in-place
        renewal shows at once. (The Redis exporter adds `healthcheck|reload|rotation`: the
        identities with no long-running process of their own; redis_exporter.py.)
    secure_cache_ca_bundle_certificates          certificates in the trusted CA bundle: 1, or
                                                 2 while a CA rollover is under way
    secure_cache_acl_passwords_rotating          (the Redis exporter only) ACL users whose
                                                 previous password Redis still accepts
    secure_cache_data_key_generation             the data-key generation the stack deployed
                                                 (0 until the deployment passes it)
    secure_cache_data_key_previous_keys          previous data keys still accepted for reading
    secure_cache_api_previous_tokens             previous API tokens still accepted beside the
                                                 current one (the API server; 1 while a token
                                                 rotates, api_tokens.py): a count, no token
    secure_cache_integrity_failures_total        values that failed authentication (tampered,
                                                 foreign, undecryptable): served as misses
    secure_cache_newer_envelopes_total           values of an envelope version above the one
                                                 this code reads, under a data key it holds
                                                 (written by a newer secure-cache: a
                                                 rollback; crypto.Keyring.newer_version):
                                                 served as misses, never deleted by rotation
    secure_cache_acl_denials_total               commands Redis refused with NOPERM
    secure_cache_backend_failures_total{kind="auth|tls|timeout|connection"}
    secure_cache_command_errors_total            other error replies
    secure_cache_fallbacks_total                 switches to the in-memory fallback
    secure_cache_reconnects_total                switches back to Redis
    secure_cache_replay_failures_total           outage writes Redis refused on recovery
    secure_cache_replayed_writes_total           outage writes and deletes applied on recovery
    secure_cache_fallback_active                 1 while the memory fallback serves, else 0
    secure_cache_fallback_seconds_total          time spent on the fallback
    secure_cache_http_request_duration_seconds{method,route,status}   histogram (its
                                                 `_count` is the request counter)
    secure_cache_lookups_total{result="hit|miss"}
    secure_cache_redis_connect_duration_seconds  TLS handshake + AUTH, histogram
    secure_cache_envelope_duration_seconds{operation="seal|open",size="..."}  histogram
    secure_cache_redis_pool_connections{state="open|in_use"}, secure_cache_redis_pool_max

The security counters are not kept twice: `SecurityEventsCollector` reads
`SecurityEvents.snapshot()` (metrics.py) at each scrape.

No key, value or secret ever becomes a label or a sample. Every label value comes from a
closed set defined here: an unknown route, method or status is recorded as `other`, so a
caller that passes a raw request path (which carries the key) cannot leak it.
tests/unit/test_prometheus_metrics.py renders a scrape after a client with distinctive keys,
values and secrets has been exercised and checks that none of them appears.

Mounting `/metrics` (for the HTTP server): `CacheMetrics.wsgi_app()` is a WSGI application
that answers any path with the exposition, so a WSGI server can dispatch
`PATH_INFO == "/metrics"` to it unchanged (and put the same authentication in front of it as
in front of the API). A server that is not WSGI calls `CacheMetrics.render(accept)`, which
returns `(body, content_type)`. The hooks (`observe_request`, `lookup`, `connected`,
`sealed`/`opened`, `server_certificate`, `data_keys`, `fallback_entered`/`fallback_left`,
`replayed`, `watch_pool`) are what the client and the server call; each is cheap (one locked add).
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, TypeVar, get_args

from cryptography import x509
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    exposition,
    make_wsgi_app,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from secure_cache.metrics import SecurityEvents
from secure_cache.settings import read_file

if TYPE_CHECKING:
    from secure_cache.core import CacheCore
    from secure_cache.transport import BaseTransport

NAMESPACE: Final = "secure_cache"
OTHER: Final = "other"

# The service's routes (service.py); anything else, including a raw path, is `other`.
ROUTES: Final = frozenset({"/cache/{key}", "/healthz", "/security-status", "/metrics"})
METHODS: Final = frozenset({"GET", "PUT", "DELETE", "POST", "HEAD", "PATCH", "OPTIONS"})

_BACKEND_HELP: Final = "Failures to reach or use Redis, by kind."
# SecurityEvents counter -> (metric family, help, labels). Every counter of metrics.COUNTERS
# must appear here (a unit test checks), so a new event cannot silently go unexported.
_EVENT_FAMILIES: Final[dict[str, tuple[str, str, dict[str, str]]]] = {
    "integrity_failures": (
        "integrity_failures",
        "Cached values that failed authentication (tampered, foreign or undecryptable).",
        {},
    ),
    "newer_envelopes": (
        "newer_envelopes",
        "Cached values written by a newer secure-cache (an envelope version this code does not"
        " read): served as misses, left in place by rotation. Upgrade the app.",
        {},
    ),
    "acl_denied": ("acl_denials", "Commands Redis refused with NOPERM.", {}),
    "auth_failures": ("backend_failures", _BACKEND_HELP, {"kind": "auth"}),
    "tls_failures": ("backend_failures", _BACKEND_HELP, {"kind": "tls"}),
    "timeouts": ("backend_failures", _BACKEND_HELP, {"kind": "timeout"}),
    "connection_failures": ("backend_failures", _BACKEND_HELP, {"kind": "connection"}),
    "command_errors": ("command_errors", "Error replies other than ACL denials.", {}),
    "fallbacks": ("fallbacks", "Switches to the in-memory fallback.", {}),
    "reconnects": ("reconnects", "Switches back to Redis after the fallback.", {}),
    "replay_failures": (
        "replay_failures",
        "Writes made during an outage that Redis refused on recovery.",
        {},
    ),
    "material_reloads": (
        "material_reloads",
        "Rotated material (certificates, CA bundle, password, data keys) picked up from files.",
        {},
    ),
    "reload_failures": (
        "material_reload_failures",
        "Rotated material files that could not be used; the previous material stays in use.",
        {},
    ),
}

# Envelope size classes: a label value names the upper bound of its class.
_SIZE_CLASSES: Final = ((1 << 10, "1KiB"), (16 << 10, "16KiB"), (256 << 10, "256KiB"))
_SIZE_LARGEST: Final = "more"
# Sealing a small value takes microseconds; the default buckets start at 5 ms.
_ENVELOPE_BUCKETS: Final = (
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip
_HTTP_BUCKETS: Final = (
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
_CONNECT_BUCKETS: Final = (0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# The `certificate` label's closed set: the CA bundle, the server certificate as served, the
# process's own client certificate, and the other client identities' certificates that the
# Redis exporter watches for them (redis_exporter.WATCHED_CERTIFICATES).
CertificateRole = Literal["ca", "server", "client", "healthcheck", "reload", "rotation"]
CERTIFICATE_ROLES: Final[tuple[CertificateRole, ...]] = get_args(CertificateRole)
T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True)
class PoolState:
    """Connections the client's pool holds now, how many are lent out, and its bound."""

    open: int
    in_use: int
    max: int


def size_class(nbytes: int) -> str:
    """The label value for an envelope of `nbytes`: the bound of its class, or `more`."""
    for bound, label in _SIZE_CLASSES:
        if nbytes <= bound:
            return label
    return _SIZE_LARGEST


def route_label(route: str) -> str:
    return route if route in ROUTES else OTHER


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else OTHER


class Validity(NamedTuple):
    """A certificate's notBefore and notAfter, in seconds since the epoch."""

    not_before: float
    not_after: float


def validity(cert: x509.Certificate) -> Validity:
    return Validity(cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp())


def bundle_validities(pem: bytes) -> list[Validity]:
    """The validity of every certificate in a PEM bundle (none when it holds none)."""
    certs = x509.load_pem_x509_certificates(pem) if b"-----BEGIN" in pem else []
    return [validity(c) for c in certs]


def earliest_validity(pem: bytes) -> Validity | None:
    """The validity of the certificate in a PEM bundle that expires first; None when it has
    none."""
    return _earliest(bundle_validities(pem))


def _earliest(validities: Iterable[Validity]) -> Validity | None:
    return min(validities, key=lambda v: v.not_after, default=None)


def earliest_not_after(pem: bytes) -> float | None:
    """The earliest notAfter of the certificates in a PEM bundle; None when it has none."""
    earliest = earliest_validity(pem)
    return None if earliest is None else earliest.not_after


class SecurityEventsCollector(Collector):
    """Exports a SecurityEvents' counters at scrape time (no second set of counters)."""

    def __init__(self, events: SecurityEvents) -> None:
        self._events = events

    def collect(self) -> Iterator[Metric]:
        yield from event_families(self._events.snapshot())


def event_families(snapshot: Mapping[str, int]) -> list[Metric]:
    """Counter families for a SecurityEvents snapshot; unknown counters are skipped."""
    families: dict[str, CounterMetricFamily] = {}
    for counter, (name, help_text, labels) in _EVENT_FAMILIES.items():
        if counter not in snapshot:
            continue
        family = families.get(name)
        if family is None:
            family = families[name] = CounterMetricFamily(
                f"{NAMESPACE}_{name}", help_text, labels=list(labels)
            )
        family.add_metric(list(labels.values()), snapshot[counter])
    return list(families.values())


class _CertificateCollector(Collector):
    """Certificate expiry and lifetime: files re-read per scrape, the server's from the last
    handshake. The lifetime lets monitoring/alerts.yml warn at a third of a short-lived
    certificate's life (when the stack renews it) rather than at a fixed 30 days, which a
    30-day production certificate would be under from its first day. With a CA bundle it also
    counts the CAs trusted: two for more than a day is a CA rollover left half done
    (CaRolloverUnfinished)."""

    def __init__(self, files: Mapping[CertificateRole, Path]) -> None:
        self._files = dict(files)
        self._handshake: Validity | None = None
        self.view: Callable[[], Validity | None] | None = None

    def server_certificate(self, der: bytes) -> None:
        self._handshake = validity(x509.load_der_x509_certificate(der))

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{NAMESPACE}_certificate_expiry_timestamp_seconds",
            "notAfter of the CA bundle's earliest certificate, the server certificate seen in "
            "the latest TLS handshake, and the client certificate, in seconds since the epoch.",
            labels=["certificate"],
        )
        lifetime = GaugeMetricFamily(
            f"{NAMESPACE}_certificate_lifetime_seconds",
            "notAfter minus notBefore of the same certificates: how long each was issued for.",
            labels=["certificate"],
        )
        files = {role: _file_validities(path) for role, path in self._files.items()}
        values: dict[str, Validity | None] = {
            role: None if found is None else _earliest(found) for role, found in files.items()
        }
        values["server"] = self.view() if self.view is not None else self._handshake
        for role in CERTIFICATE_ROLES:
            value = values.get(role)
            if value is not None:
                family.add_metric([role], value.not_after)
                lifetime.add_metric([role], value.not_after - value.not_before)
        yield family
        yield lifetime
        bundle = files.get("ca")
        if bundle:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_ca_bundle_certificates",
                "Certificates in the trusted CA bundle: 1, or 2 while a CA rollover is under "
                "way (introduced or promoted, not yet retired).",
                value=len(bundle),
            )


def _file_validities(path: Path) -> list[Validity] | None:
    """None when the file cannot be read (settings.read_file: a regular file of at most
    1 MiB, like every configured file) or parsed: the series disappears, which
    monitoring/alerts.yml treats as an alert of its own (absent certificate expiry)."""
    try:
        return bundle_validities(read_file(str(path)))
    except (OSError, ValueError):
        return None


def certificate_collector(files: Mapping[CertificateRole, Path]) -> Collector:
    """`secure_cache_certificate_expiry_timestamp_seconds` for certificate files, re-read at
    each scrape (the Redis exporter exports its CA bundle and client certificate with it, so
    the same alert rules cover them)."""
    return _CertificateCollector(files)


class _CountFileCollector(Collector):
    def __init__(self, name: str, help_text: str, path: Path) -> None:
        self._name, self._help, self._path = f"{NAMESPACE}_{name}", help_text, path

    def collect(self) -> Iterator[Metric]:
        count = _file_int(self._path)
        if count is not None:
            yield GaugeMetricFamily(self._name, self._help, value=count)


def count_file_collector(name: str, help_text: str, path: Path) -> Collector:
    """The gauge `secure_cache_<name>`: the count a file holds (a deployment writes it),
    re-read at each scrape; no sample while it cannot be read or holds no count."""
    return _CountFileCollector(name, help_text, path)


class _FallbackCollector(Collector):
    def __init__(self, metrics: CacheMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        active, seconds = self._metrics.fallback_time()
        yield GaugeMetricFamily(
            f"{NAMESPACE}_fallback_active",
            "1 while the in-memory fallback serves instead of Redis, else 0.",
            value=1 if active else 0,
        )
        yield CounterMetricFamily(
            f"{NAMESPACE}_fallback_seconds",
            "Time spent on the in-memory fallback.",
            value=seconds,
        )


class _PoolCollector(Collector):
    def __init__(self) -> None:
        self.view: Callable[[], PoolState] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.view is None:
            return
        state = self.view()
        connections = GaugeMetricFamily(
            f"{NAMESPACE}_redis_pool_connections",
            "Connections in the client's pool, by state.",
            labels=["state"],
        )
        connections.add_metric(["open"], state.open)
        connections.add_metric(["in_use"], state.in_use)
        yield connections
        yield GaugeMetricFamily(
            f"{NAMESPACE}_redis_pool_max", "The pool's bound on connections.", value=state.max
        )


class _Tally:
    """A histogram kept as a plain list, read at scrape time.

    The client's per-operation hooks (lookups, seal, open) run on its hot path. Measured on
    the shared 2-core build machine (2026-11-30, timeit, best of 5): prometheus_client's
    `Histogram.labels(...).observe()` (a label lookup, a lock) 2.7 us, this class's
    `observe` (a bisect, two list adds) 0.3 us, against about 17 us for a whole pipelined
    1 KiB operation (docs/client.md, "Benchmark"). Under the GIL two threads adding at once may,
    rarely, lose one increment; the service runs on one event loop, where counts are exact.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return cumulative


class _HotPathCollector(Collector):
    """Lookups and envelope timings, counted by the hooks as plain numbers (see _Tally)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        labels = [label for _, label in _SIZE_CLASSES] + [_SIZE_LARGEST]
        self.seal = {label: _Tally(_ENVELOPE_BUCKETS) for label in labels}
        self.open = {label: _Tally(_ENVELOPE_BUCKETS) for label in labels}

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            f"{NAMESPACE}_lookups", "Cache reads answered by Redis, by result.", labels=["result"]
        )
        lookups.add_metric(["hit"], self.hits)
        lookups.add_metric(["miss"], self.misses)
        yield lookups
        envelope = HistogramMetricFamily(
            f"{NAMESPACE}_envelope_duration_seconds",
            "Time to seal or open one value, by operation and size class (upper bound).",
            labels=["operation", "size"],
        )
        for operation, tallies in (("seal", self.seal), ("open", self.open)):
            for size, tally in tallies.items():
                buckets = tally.buckets()
                if buckets[-1][1]:
                    envelope.add_metric([operation, size], buckets, sum_value=tally.total)
        yield envelope


class _KeyringCollector(Collector):
    """The data-key generation (from a file the deployment writes, re-read per scrape, so
    an in-place rotation shows at once) and how many previous keys the keyring holds."""

    def __init__(self, generation_file: Path | None) -> None:
        self.generation_file = generation_file
        self.generation: int | None = None
        self.previous = 0
        self.previous_view: Callable[[], int] | None = None

    def collect(self) -> Iterator[Metric]:
        generation = self.generation
        if self.generation_file is not None:
            generation = _file_int(self.generation_file)
        yield GaugeMetricFamily(
            f"{NAMESPACE}_data_key_generation",
            "The data-key generation this process encrypts with (0: not told).",
            value=generation or 0,
        )
        previous = self.previous_view() if self.previous_view is not None else self.previous
        yield GaugeMetricFamily(
            f"{NAMESPACE}_data_key_previous_keys",
            "Previous data keys still accepted for reading (kept only during a rotation).",
            value=previous,
        )


class _ApiTokensCollector(Collector):
    """How many previous API tokens the server accepts, read from `view` at each scrape
    (0 when no server attached one: a bare client has no tokens)."""

    def __init__(self) -> None:
        self.view: Callable[[], int] | None = None

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{NAMESPACE}_api_previous_tokens",
            "Previous API tokens still accepted beside the current one (kept only while a"
            " token rotation waits for its clients).",
            value=self.view() if self.view is not None else 0,
        )


def _file_int(path: Path) -> int | None:
    """The number in the file, or None when it holds none or cannot be read (read_file)."""
    try:
        text = read_file(str(path)).decode("ascii").strip()
        # int() refuses more than 4300 digits (ValueError): no count, never a failed scrape.
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


class CacheMetrics:
    """One cache's metrics and the registry they are exposed from."""

    def __init__(
        self,
        events: SecurityEvents,
        *,
        ca_file: str | Path | None = None,
        client_cert_file: str | Path | None = None,
        previous_keys: int = 0,
        data_key_generation: int | None = None,
        data_key_generation_file: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        events: the client's SecurityEvents (exported as they are, at scrape time).
        ca_file, client_cert_file: REDIS_TLS_CA_CERT and REDIS_TLS_CERT_FILE.
        previous_keys: how many previous data keys the keyring accepts.
        data_key_generation: the stack's data-key generation, when the deployment passes it.
        data_key_generation_file: a file holding it (REDIS_ENCRYPTION_KEY_GENERATION_FILE),
            re-read at each scrape; it wins over `data_key_generation`.
        clock: monotonic seconds, for time on the fallback (tests pass a fake).
        """
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._fallback_since: float | None = None
        self._fallback_closed = 0.0
        files: dict[CertificateRole, Path] = {}
        if ca_file is not None:
            files["ca"] = Path(ca_file)
        if client_cert_file is not None:
            files["client"] = Path(client_cert_file)
        self._certificates = _CertificateCollector(files)
        self._pool = _PoolCollector()
        self._hot = _HotPathCollector()
        self._keyring = _KeyringCollector(
            None if data_key_generation_file is None else Path(data_key_generation_file)
        )
        self._api_tokens = _ApiTokensCollector()
        for collector in (
            SecurityEventsCollector(events),
            self._certificates,
            _FallbackCollector(self),
            self._pool,
            self._hot,
            self._keyring,
            self._api_tokens,
        ):
            self.registry.register(collector)
        reg = self.registry
        self.data_keys(previous=previous_keys, generation=data_key_generation)
        self._replayed = Counter(
            f"{NAMESPACE}_replayed_writes",
            "Writes and deletes made during an outage and applied to Redis on recovery.",
            registry=reg,
        )
        self._requests = Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "HTTP requests by method, route (never the path) and status, and their latency.",
            ["method", "route", "status"],
            buckets=_HTTP_BUCKETS,
            registry=reg,
        )
        self._connect = Histogram(
            f"{NAMESPACE}_redis_connect_duration_seconds",
            "Time to open a connection to Redis: TCP, TLS handshake and AUTH.",
            buckets=_CONNECT_BUCKETS,
            registry=reg,
        )

    # -- hooks for the client and the server -----------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request. `route` is the route template; anything else counts as `other`."""
        self._requests.labels(
            method_label(method), route_label(route), status_label(status)
        ).observe(seconds)

    def lookup(self, *, hit: bool) -> None:
        if hit:
            self._hot.hits += 1
        else:
            self._hot.misses += 1

    def connected(self, seconds: float) -> None:
        """A new Redis connection is ready (handshake and AUTH done) after `seconds`."""
        self._connect.observe(seconds)

    def sealed(self, nbytes: int, seconds: float) -> None:
        self._hot.seal[size_class(nbytes)].observe(seconds)

    def opened(self, nbytes: int, seconds: float) -> None:
        self._hot.open[size_class(nbytes)].observe(seconds)

    # The client's call sites (core.py): each wraps the one call it times or counts, so the
    # client itself holds no metrics logic and pays one `is None` test when none is attached.

    def looked_up(self, finish: Callable[[T], bytes | None], reply: T) -> bytes | None:
        """A single read: `finish(reply)` is the value or None (a miss)."""
        value = finish(reply)
        if value is None:
            self._hot.misses += 1
        else:
            self._hot.hits += 1
        return value

    def looked_up_many(
        self, wanted: int, finish: Callable[[T], dict[str, bytes]], reply: T
    ) -> dict[str, bytes]:
        """A batch read of `wanted` keys: the found ones are hits, the rest misses."""
        found = finish(reply)
        self._hot.hits += len(found)
        self._hot.misses += wanted - len(found)
        return found

    def timed_seal(self, seal: Callable[..., S], *args: bytes) -> S:
        """`seal(name, logical, value[, expiry stamp])`, timed by the value's size."""
        start = time.perf_counter()
        envelope = seal(*args)
        self._hot.seal[size_class(len(args[2]))].observe(time.perf_counter() - start)
        return envelope

    def timed_seals(self, sealed: Iterator[S], sizes: Sequence[int]) -> Iterator[S]:
        """The envelopes of a batch sealed as they are taken (Keyring.seal_many), each timed
        by its value's size."""
        seal = self._hot.seal
        for size in sizes:
            start = time.perf_counter()
            envelope = next(sealed)
            seal[size_class(size)].observe(time.perf_counter() - start)
            yield envelope

    def timed_open(
        self, open_value: Callable[[bytes, bytes, bytes], bytes | None], *args: bytes
    ) -> bytes | None:
        """`open_value(name, logical, envelope)`, timed by the envelope's size (raises what
        it raises: a value that fails authentication is not timed)."""
        start = time.perf_counter()
        value = open_value(*args)
        self._hot.open[size_class(len(args[2]))].observe(time.perf_counter() - start)
        return value

    def server_certificate(self, der: bytes) -> None:
        """The certificate the server presented (`ssl_socket.getpeercert(binary_form=True)`)."""
        self._certificates.server_certificate(der)

    def watch_server_certificate(self, view: Callable[[], Validity | None]) -> None:
        """Read the validity of the server certificate of the latest handshake from `view` at
        each scrape (the client records it per handshake)."""
        self._certificates.view = view

    def data_keys(self, *, previous: int, generation: int | None) -> None:
        """The keyring now: at start, and again when the keys are reloaded in place."""
        self._keyring.previous = previous
        self._keyring.generation = generation

    def watch_keyring(self, previous_keys: Callable[[], int]) -> None:
        """Read how many previous data keys the client accepts from `previous_keys` at each
        scrape (the client's keyring is swapped whole when its files change)."""
        self._keyring.previous_view = previous_keys

    def watch_api_tokens(self, previous_tokens: Callable[[], int]) -> None:
        """Read how many previous API tokens the server accepts from `previous_tokens` at
        each scrape (http_api.CacheAPI attaches its ApiTokens)."""
        self._api_tokens.view = previous_tokens

    def replayed(self, count: int) -> None:
        self._replayed.inc(count)

    def fallback_entered(self) -> None:
        with self._lock:
            if self._fallback_since is None:
                self._fallback_since = self._clock()

    def fallback_left(self) -> None:
        with self._lock:
            if self._fallback_since is not None:
                self._fallback_closed += self._clock() - self._fallback_since
                self._fallback_since = None

    def fallback_time(self) -> tuple[bool, float]:
        """(active now, total seconds on the fallback including the current episode)."""
        with self._lock:
            since = self._fallback_since
            total = self._fallback_closed
            if since is not None:
                total += self._clock() - since
            return since is not None, total

    def watch_pool(self, view: Callable[[], PoolState]) -> None:
        """Read the pool's state from `view` at each scrape."""
        self._pool.view = view

    def attach_client(self, core: CacheCore, transport: BaseTransport) -> None:
        """What is read from a client at scrape time rather than hooked: its pool, the
        server certificate of its latest handshake, its keyring (SecureCache.attach_metrics
        calls this)."""

        def pool() -> PoolState:
            return PoolState(*transport.pool_state())

        def server_validity() -> Validity | None:
            info = transport.tls_info
            if info is None:
                return None
            before, after = info.server_cert_not_before, info.server_cert_not_after
            return None if before is None or after is None else Validity(before, after)

        self.watch_pool(pool)
        self.watch_server_certificate(server_validity)
        self.watch_keyring(lambda: len(core.keyring.previous))
        if core.degraded:
            self.fallback_entered()

    # -- exposition -------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition for an `Accept` header: (body, Content-Type)."""
        encoder, content_type = exposition.choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def wsgi_app(self) -> Callable[..., Iterable[bytes]]:
        """A WSGI application serving this registry (mount it at /metrics)."""
        return make_wsgi_app(self.registry)


__all__ = [
    "CERTIFICATE_ROLES",
    "METHODS",
    "ROUTES",
    "CacheMetrics",
    "PoolState",
    "SecurityEventsCollector",
    "Validity",
    "bundle_validities",
    "certificate_collector",
    "count_file_collector",
    "earliest_not_after",
    "earliest_validity",
    "event_families",
    "route_label",
    "size_class",
    "validity",
]
