"""Redis clients: every container that points at Redis does so over verified TLS (rediss://)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from policies.rules._model import CONTAINER, Resource, StackRule, Violation
from policies.rules._props import argv_words, envs, label, of_type
from policies.rules._redisconf import is_redis_server

_REDIS_URL: Final = re.compile(r"(?i)\b(?:redis|rediss|valkey|valkeys|redis\+sentinel)://[^\s'\"]*")
_TLS_SCHEMES: Final = frozenset({"rediss", "valkeys"})
_NO_VERIFY: Final = {
    "ssl_cert_reqs": {"none", "optional", "cert_none", "cert_optional"},
    "ssl_check_hostname": {"false", "0", "no", "off"},
}


def redis_urls(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, url) for every Redis URL in env values and argv; `where` names no value."""
    found = [
        (f"env {key}", m.group(0)) for key, value in envs(props) for m in _REDIS_URL.finditer(value)
    ]
    found += [
        ("its command", m.group(0)) for w in argv_words(props) for m in _REDIS_URL.finditer(w)
    ]
    return found


def _weak(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme.lower() not in _TLS_SCHEMES:
        return True
    query = {k.lower(): [v.lower() for v in vs] for k, vs in parse_qs(parts.query).items()}
    return any(v in bad for key, bad in _NO_VERIFY.items() for v in query.get(key, []))


def clients_use_tls(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    for container in of_type(resources, CONTAINER):
        if is_redis_server(container.props):
            continue
        weak = sorted({where for where, url in redis_urls(container.props) if _weak(url)})
        if weak:
            yield Violation(
                f"{label(container)} must connect to Redis with a rediss:// URL that verifies "
                f"the server (no ssl_cert_reqs=none, no ssl_check_hostname=false); "
                f"{', '.join(weak)} does not.",
                container.urn,
            )


RULES: Final = (
    StackRule(
        name="redis-clients-use-tls",
        description=(
            "Every Redis client in the stack connects over rediss:// and verifies the server."
        ),
        check=clients_use_tls,
        refs=("TLS-06",),
    ),
)
