"""Days to expiry of every certificate and the data-key generation, from a running stack's own
containers (scripts/status.sh collects them; this prints the table and picks the exit code).

    python scripts/stack_status.py STACK < collected.txt
    python scripts/stack_status.py --consumers     # what status.sh copies: NAME CONTAINER PATH
    python scripts/stack_status.py --bundles       # the CA bundles it copies: NAME CONTAINER PATH
    docker cp -L CONTAINER:PATH - | python scripts/stack_status.py --not-after NAME
    docker cp -L CONTAINER:PATH - | python scripts/stack_status.py --trusted NAME

The input is the app's /metrics exposition (app/secure_cache/prometheus.py), scraped inside the
app container, followed by lines `# consumer <name> <notAfter epoch seconds>` for the client
certificates the app does not report (CONSUMERS), which `--not-after` makes of the tar
`docker cp` writes of each, lines `# trusted <name> <notAfter>,<notAfter>...` for the CA
bundles Redis and the app trust (BUNDLES: two CAs while a CA rollover is unfinished), which
`--trusted` makes of theirs, and `# engine live-restore true|false` (`docker info`). Nothing
else is read, and nothing secret is in it.

Exit codes (README, Exit codes): 0 every value was read; 1 a certificate or the data-key
generation is missing from what the stack reports (listed as `unknown`).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

from infra.cli import exit_with
from secure_cache.cli_parser import say

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

# status.sh starts this script about ten times per run, each for one job: each mode imports
# only what it needs (cryptography, tarfile, prometheus_client, infra), where it needs it.

EXPIRY: Final = "secure_cache_certificate_expiry_timestamp_seconds"
# (label in the table, where the value comes from)
CERTIFICATES: Final = (
    ("CA (earliest in the bundle)", "ca"),
    ("Redis server (as served)", "server"),
    ("app client", "client"),
)
_CONSUMER: Final = "# consumer "
_TRUSTED: Final = "# trusted "
_LIVE_RESTORE: Final = "# engine live-restore "
# status.sh read the containers on the stack's two networks: one `# attached NETWORK NAME
# STACK-LABEL` line each. Only the program's own containers belong there: the label alone is
# no proof (a container run from the stack's image inherits the image's stack label).
_NETWORKS_READ: Final = "# networks read"
_ATTACHED: Final = "# attached "
# The suffix of every container the program declares (secure-redis-<stack>-<suffix>); a unit
# test holds it to the rendered stack (tests/unit/test_status_script.py).
CONTAINER_SUFFIXES: Final = (
    "app",
    "app-init",
    "redis",
    "redis-exporter",
    "redis-exporter-init",
    "redis-init",
    "reload-acl",
    "reload-init",
    "reload-tls",
    "rotation",
    "rotation-init",
)
# The exporter's lines status.sh keeps (redis_up, redis_acl_log_*, redis_errors_total), each
# behind this prefix: its families share names with the app's (certificate expiry), so they
# are parsed apart.
_REDIS: Final = "# redis "
# ACL LOG reasons (app/secure_cache/redis_exporter.py ACL_LOG_REASONS) and the error kinds
# shown: a failed AUTH and an ACL denial.
ACL_LOG_REASONS: Final = ("auth", "command", "key", "channel")
DENIALS: Final = ("WRONGPASS", "NOPERM")


@dataclass(frozen=True)
class Consumer:
    """A client certificate the app does not report, and where the stack keeps it."""

    name: str
    """`# consumer <name> ...`; the table's row is `<name> client`."""
    container: str
    """The suffix of the container that uses it: secure-redis-<stack>-<container>."""
    path: str
    """Its file in that container's material volume."""


# Read from each container with `docker cp`, which copies out of a stopped container's
# volumes too: the rotation pass is declared stopped (infra/components/rotation.py), the
# reload jobs exit once done (infra/components/reload.py), and an exporter that crashed still
# holds its certificate. tests/unit/test_status_script.py pins these to the declaration.
CONSUMERS: Final = (
    Consumer("redis-exporter", "redis-exporter", "/etc/secure-cache/exporter.crt"),
    Consumer("rotation", "rotation", "/etc/secure-cache/rotation.crt"),
    Consumer("healthcheck", "redis", "/etc/secure-redis/healthcheck.crt"),
    Consumer("reload", "reload-tls", "/etc/secure-redis/reload.crt"),
)
CONSUMER_NAMES: Final = tuple(consumer.name for consumer in CONSUMERS)
# The CA bundles that decide whom each side trusts: Redis's decides which client certificates
# it accepts (a leaked one signed by the old CA until the rollover's retire step), the app's
# which server it talks to. Each holds two CAs from a rollover's introduce step until its
# retire step (docs/day2.md: `ca`). tests/unit/test_status_script.py pins them to the
# declaration.
BUNDLES: Final = (
    Consumer("Redis", "redis", "/etc/secure-redis/ca.crt"),
    Consumer("app", "app", "/etc/secure-cache/ca.crt"),
)
BUNDLE_NAMES: Final = tuple(bundle.name for bundle in BUNDLES)
# A client certificate is about a kilobyte (its tar, 10 KiB); a larger copy is not one.
_MAX_COPY_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class StackStatus:
    certificates: dict[str, float | None]
    """table label -> notAfter (epoch seconds), None when the stack did not report it"""
    generation: int | None
    previous_keys: int | None
    fallback_active: bool | None
    previous_tokens: int | None
    """Old API tokens the app still accepts beside the current one (> 0: a rotation waits)."""
    trusted: dict[str, tuple[float, ...] | None]
    """bundle name -> notAfter of each CA in it, None when it could not be read"""
    live_restore: bool | None = None
    """The engine's live-restore, None when status.sh could not read it."""
    redis: RedisView | None = None
    """Redis's ACL LOG and denial counts as the exporter reports them, None when unread."""
    strangers: tuple[tuple[str, str], ...] | None = None
    """(network, container) attached to the stack's networks and not labelled as the stack's;
    None when status.sh could not read the networks."""

    @property
    def complete(self) -> bool:
        return (
            self.generation is not None
            and all(v is not None for v in self.certificates.values())
            and all(v is not None for v in self.trusted.values())
            and self.redis is not None
            and self.redis.up
        )


@dataclass(frozen=True)
class RedisView:
    """What the exporter's /metrics says of Redis's ACL LOG and denials (counts only)."""

    up: bool
    """redis_up: the exporter's last query of Redis succeeded."""
    entries: dict[str, int]
    """ACL LOG entries it holds now, by reason."""
    newest_age: float | None
    """Seconds since the newest entry, None when the log is empty."""
    errors: dict[str, int]
    """redis_errors_total of DENIALS: since Redis started (INFO errorstats)."""


def _finite_samples(families: Iterable[Metric]) -> Iterator[Sample]:
    """The samples of `families` with a finite value: NaN or Inf is as if not reported (a
    container reporting it ended this script in a traceback from int() or datetime)."""
    for family in families:
        yield from (sample for sample in family.samples if math.isfinite(sample.value))


def redis_view(lines: list[str]) -> RedisView | None:
    """The exporter's lines status.sh kept; None when there are none or they do not parse."""
    if not lines:
        return None
    # Imported here: only this mode parses metrics (see the note on imports above).
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    try:
        families = list(text_string_to_metric_families("\n".join(lines) + "\n"))
    except ValueError:
        return None
    up = None
    entries: dict[str, int] = {}
    ages: list[float] = []
    errors: dict[str, int] = {}
    for sample in _finite_samples(families):
        if sample.name == "redis_up":
            up = sample.value == 1
        elif sample.name == "redis_acl_log_entries":
            entries[sample.labels.get("reason", "")] = int(sample.value)
        elif sample.name == "redis_acl_log_newest_age_seconds":
            ages.append(sample.value)
        elif sample.name == "redis_errors_total":
            errors[sample.labels.get("error", "")] = int(sample.value)
    if up is None:
        return None
    return RedisView(up=up, entries=entries, newest_age=min(ages, default=None), errors=errors)


def parse(
    text: str,
    consumers: Iterable[str] = CONSUMER_NAMES,
    *,
    stack: str = "",
    bundles: Iterable[str] = BUNDLE_NAMES,
) -> StackStatus:
    """`stack`: whose containers belong on its networks (the `# attached` lines)."""
    samples: dict[tuple[str, str], float] = {}
    extra: dict[str, float] = {}
    trusted: dict[str, tuple[float, ...]] = {}
    live_restore = None
    # Comments to the exposition parser below, which skips them.
    network_lines = [
        ln.strip() for ln in text.splitlines() if ln.startswith((_NETWORKS_READ, _ATTACHED))
    ]
    exposition: list[str] = []
    redis: list[str] = []
    for line in text.splitlines():
        if line.startswith(_REDIS):
            redis.append(line[len(_REDIS) :])
        elif line.startswith(_CONSUMER):
            name, _, value = line[len(_CONSUMER) :].partition(" ")
            try:
                extra[name] = float(value)
            except ValueError:
                continue
        elif line.startswith(_TRUSTED):
            name, _, values = line[len(_TRUSTED) :].partition(" ")
            if (dates := _dates(values)) is not None:
                trusted[name] = dates
        elif line.startswith(_LIVE_RESTORE):
            value = line[len(_LIVE_RESTORE) :].strip()
            live_restore = {"true": True, "false": False}.get(value)
        else:
            exposition.append(line)
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    try:
        families = list(text_string_to_metric_families("\n".join(exposition) + "\n"))
    except ValueError:
        families = []
    for sample in _finite_samples(families):
        samples[(sample.name, sample.labels.get("certificate", ""))] = sample.value
    certificates: dict[str, float | None] = {
        label: _date(samples.get((EXPIRY, role))) for label, role in CERTIFICATES
    }
    for consumer in consumers:
        certificates[f"{consumer} client"] = _date(extra.get(consumer))
    generation = samples.get(("secure_cache_data_key_generation", ""))
    previous = samples.get(("secure_cache_data_key_previous_keys", ""))
    fallback = samples.get(("secure_cache_fallback_active", ""))
    tokens = samples.get(("secure_cache_api_previous_tokens", ""))
    return StackStatus(
        certificates=certificates,
        generation=int(generation) if generation else None,
        previous_keys=None if previous is None else int(previous),
        fallback_active=None if fallback is None else fallback == 1,
        previous_tokens=None if tokens is None else int(tokens),
        trusted={name: trusted.get(name) for name in bundles},
        live_restore=live_restore,
        redis=redis_view(redis),
        strangers=_strangers(stack, network_lines) if _NETWORKS_READ in network_lines else None,
    )


def _dates(values: str) -> tuple[float, ...] | None:
    """A `# trusted` line's notAfter list, or None when one is not a finite number."""
    try:
        dates = tuple(float(v) for v in values.split(","))
    except ValueError:
        return None
    return dates if all(math.isfinite(t) for t in dates) else None


# The latest moment a table row can show (9999-12-31T23:59:59Z, datetime's last year).
_LAST_DATE: Final = 253402300799.0


def _date(value: float | None) -> float | None:
    """An expiry the table can show as a date, else None (unknown): a container reporting
    NaN, 1e300 or -1e18 ended this script in a traceback from datetime.fromtimestamp."""
    return value if value is not None and 0 <= value <= _LAST_DATE else None


def render(stack: str, status: StackStatus, now: float) -> list[str]:
    width = max(len(label) for label in status.certificates)
    lines = [f"stack {stack}, read from its containers", ""]
    lines.append(f"{'certificate'.ljust(width)}  {'not after (UTC)'.ljust(16)}  days left")
    for label, not_after in status.certificates.items():
        if not_after is None:
            lines.append(f"{label.ljust(width)}  {'unknown'.ljust(16)}  -")
            continue
        when = dt.datetime.fromtimestamp(not_after, dt.UTC).strftime("%Y-%m-%d %H:%M")
        # Tenths of a day (8640 s), cut, not rounded, as `infra.apply status` counts whole
        # days: 364.97 days showed as 365.0 here beside its "364 days left".
        left = "expired" if not_after <= now else f"{math.floor((not_after - now) / 8640) / 10:.1f}"
        lines.append(f"{label.ljust(width)}  {when}  {left}")
    expired = [label for label, t in status.certificates.items() if t is not None and t <= now]
    if expired:
        lines.append("")
        lines.append(
            f"expired: {', '.join(expired)}; TLS to Redis fails with it. Renew the leaf "
            f"certificates with scripts/rotate.sh {stack} certs (an expired CA: "
            f"scripts/rotate.sh {stack} ca)"
        )
    lines.append("")
    generation = "unknown" if status.generation is None else str(status.generation)
    previous = "unknown" if status.previous_keys is None else str(status.previous_keys)
    lines.append(f"data-key generation {generation} (previous keys still readable: {previous})")
    if status.fallback_active is not None:
        backend = "memory fallback (Redis unreachable)" if status.fallback_active else "redis"
        lines.append(f"the app serves from: {backend}")
    lines.extend(_token_lines(stack, status.previous_tokens))
    lines.extend(_trust_lines(stack, status.trusted))
    lines.extend(_redis_lines(status.redis))
    lines.append(_strangers_line(status.strangers))
    if status.live_restore is not None:
        from infra.engine_report import live_restore_line  # noqa: PLC0415

        lines.append(f"engine {live_restore_line({'LiveRestoreEnabled': status.live_restore})}")
    return lines


def _strangers(stack: str, lines: list[str]) -> tuple[tuple[str, str], ...]:
    ours = {f"secure-redis-{stack}-{suffix}" for suffix in CONTAINER_SUFFIXES}
    attached = [tuple(ln[len(_ATTACHED) :].split()) for ln in lines if ln.startswith(_ATTACHED)]
    return tuple(
        (entry[0], entry[1])
        for entry in attached
        if len(entry) >= 2 and (entry[1] not in ours or entry[2:] != (stack,))
    )


def _strangers_line(strangers: tuple[tuple[str, str], ...] | None) -> str:
    if strangers is None:
        return "networks: unknown (docker network inspect failed)"
    if not strangers:
        return "networks: only the stack's containers are attached"
    named = ", ".join(f"{name} ({network})" for network, name in strangers)
    network, name = strangers[0]
    return (
        f"not the stack's, attached to its networks: {named}; it reaches the stack's "
        f"containers there: `docker network disconnect {network} {name}` (or remove it)"
    )


def _token_lines(stack: str, previous: int | None) -> list[str]:
    """How many old API tokens the app still accepts; any is a token rotation left between
    `api-token` and `api-token-retire` (what ApiTokenRotationUnfinished fires on)."""
    if previous is None:
        return []
    lines = [f"API tokens accepted: the current one and {previous} previous"]
    if previous:
        lines.append(
            "rotation unfinished: an old API token is still accepted beside the new one; once "
            f"its clients read the new one, retire it: scripts/rotate.sh {stack} "
            "api-token-retire (docs/day2.md)"
        )
    return lines


def _trust_lines(stack: str, trusted: dict[str, tuple[float, ...] | None]) -> list[str]:
    """How many CAs each side trusts; more than one is a CA rollover left unfinished."""
    if not trusted:
        return []
    counts = ", ".join(
        f"{name} {'unknown' if cas is None else len(cas)}" for name, cas in trusted.items()
    )
    lines = [f"CAs trusted: {counts}"]
    several = [name for name, cas in trusted.items() if cas is not None and len(cas) > 1]
    if several:
        lines.append(
            f"rotation unfinished: the old CA is still trusted beside the new one (by "
            f"{', '.join(several)}): a CA rollover is between its introduce and retire steps, so "
            "a client certificate the old CA signed is still accepted. Each up takes it one "
            f"step further: run `python -m infra.apply up --stack {stack}` (or `pulumi up`) "
            f"until one CA is left; `python -m infra.apply status --stack {stack}` says how "
            "many ups (docs/day2.md)"
        )
    return lines


def _redis_lines(view: RedisView | None) -> list[str]:
    """The ACL LOG by reason and the denials since Redis started; what the
    RedisAuthFailureBurst and RedisAclDenials alerts fire on (docs/monitoring.md)."""
    if view is None:
        return ["Redis ACL LOG: unknown (the exporter's /metrics could not be read)"]
    if not view.up:
        return ["Redis ACL LOG: unknown (the exporter cannot query Redis: redis_up 0)"]
    held = ", ".join(f"{reason} {view.entries.get(reason, 0)}" for reason in ACL_LOG_REASONS)
    newest = "" if view.newest_age is None else f"; the newest {_duration(view.newest_age)} ago"
    counted = ", ".join(f"{kind} {view.errors.get(kind, 0)}" for kind in DENIALS)
    return [
        f"Redis ACL LOG now: {held}{newest}",
        f"denied since Redis started: {counted} (failed AUTH, ACL denial); who and what stay in "
        "Redis's ACL LOG",
    ]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def not_after(tar: BinaryIO) -> float:
    """The notAfter of the certificate in the one-file tar `docker cp -L CONTAINER:FILE -` writes.

    Raises:
        EOFError: the stream is empty (the copy failed; Docker said why).
        ValueError: it is too large, or holds no file or no certificate.
    """
    from cryptography import x509  # noqa: PLC0415

    return x509.load_pem_x509_certificate(_copied_file(tar)).not_valid_after_utc.timestamp()


def bundle_not_afters(tar: BinaryIO) -> tuple[float, ...]:
    """The notAfter of each certificate in the CA bundle `docker cp -L` copied, in its order.

    Raises: as `not_after`.
    """
    from cryptography import x509  # noqa: PLC0415

    certificates = x509.load_pem_x509_certificates(_copied_file(tar))
    return tuple(c.not_valid_after_utc.timestamp() for c in certificates)


def _copied_file(tar: BinaryIO) -> bytes:
    """The one file in the tar `docker cp -L CONTAINER:FILE -` writes (errors: `not_after`)."""
    import tarfile  # noqa: PLC0415

    data = tar.read(_MAX_COPY_BYTES + 1)
    if not data:
        raise EOFError
    if len(data) > _MAX_COPY_BYTES:
        raise ValueError("the copy is larger than 1 MiB: not one certificate")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            member = next((m for m in archive.getmembers() if m.isfile()), None)
            handle = None if member is None else archive.extractfile(member)
            if handle is None:
                raise ValueError("the copy holds no regular file")
            pem = handle.read()
    except tarfile.TarError as exc:
        raise ValueError(f"not what docker cp writes ({exc})") from exc
    return pem


def _copied_line(option: str, name: str) -> int:
    """`--not-after NAME` / `--trusted NAME`: the `# consumer` / `# trusted` line for the tar on
    stdin; else one line on stderr naming the error (none when stdin is empty: `docker cp` has
    said why) and exit 1."""
    try:
        if option == "--trusted":
            values = ",".join(str(t) for t in bundle_not_afters(sys.stdin.buffer))
            say(f"{_TRUSTED}{name} {values}")
        else:
            say(f"{_CONSUMER}{name} {not_after(sys.stdin.buffer)}")
    except EOFError:
        return 1
    except ValueError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    listed = {"--consumers": CONSUMERS, "--bundles": BUNDLES}
    if len(argv) == 1 and argv[0] in listed:
        for consumer in listed[argv[0]]:
            say(f"{consumer.name} {consumer.container} {consumer.path}")
        return 0
    if len(argv) == 2 and argv[0] in ("--not-after", "--trusted"):
        return _copied_line(argv[0], argv[1])
    if len(argv) != 1 or argv[0].startswith("-"):
        print(
            "usage: python scripts/stack_status.py STACK < collected.txt | --consumers | "
            "--bundles | --not-after NAME < tar | --trusted NAME < tar",
            file=sys.stderr,
        )
        return 2
    status = parse(sys.stdin.read(), stack=argv[0])
    for line in render(argv[0], status, dt.datetime.now(dt.UTC).timestamp()):
        say(line)
    return 0 if status.complete else 1


if __name__ == "__main__":
    exit_with(lambda: main(sys.argv[1:]))
