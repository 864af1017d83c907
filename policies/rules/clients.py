"""Redis clients: every container or Swarm service that points at Redis does so over verified TLS.

A service is read in a container's shape (policies/rules/_service_shape.py): its `env` and
`args` carry the same URLs and host settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from policies.rules._model import Resource, StackRule, Violation
from policies.rules._props import argv_words, envs, label
from policies.rules._redisconf import redis_servers
from policies.rules._service_shape import task_containers

_REDIS_URL: Final = re.compile(r"(?i)\b(?:redis|rediss|valkey|valkeys|redis\+sentinel)://[^\s'\"]*")
_TLS_SCHEMES: Final = frozenset({"rediss", "valkeys"})
# Host settings of Redis clients configured by host and port rather than by URL: REDIS_HOST,
# QUEUE_BULL_REDIS_HOST, CACHE_REDIS_ADDR, SPRING_DATA_REDIS_HOST, REDIS_HOSTS (redis-commander).
_HOST_VARIABLE: Final = re.compile(
    r"(?i)^(?:\w+_)?(?:REDIS|VALKEY)(?:_\w+)?_(?:HOST|HOSTS|HOSTNAME|ADDR|ADDRESS|SERVER|NODES)$"
)
# Settings that switch such a client to TLS; "true"-like values only.
_TLS_VARIABLE: Final = re.compile(
    r"(?i)^(?:\w+_)?(?:REDIS|VALKEY)(?:_\w+)?_(?:TLS|SSL)(?:_ENABLED)?$"
)
_TRUE: Final = frozenset({"1", "true", "yes", "on", "required"})
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


def redis_host_settings(props: Mapping[str, Any]) -> list[str]:
    """Env names that point a client at Redis by host (and port)."""
    return sorted({key for key, value in envs(props) if value and _HOST_VARIABLE.match(key)})


def tls_switched_on(props: Mapping[str, Any]) -> bool:
    return any(
        _TLS_VARIABLE.match(key) and value.strip().lower() in _TRUE for key, value in envs(props)
    )


def is_redis_client(
    props: Mapping[str, Any], server_hosts: frozenset[str] | set[str] = frozenset()
) -> bool:
    """A Redis client: a Redis URL, a Redis host setting, or an env value naming a server's host."""
    if redis_urls(props) or redis_host_settings(props):
        return True
    values = {v.strip().lower().split(":", 1)[0] for _, v in envs(props)}
    return bool(values & {h.lower() for h in server_hosts})


def _weak(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme.lower() not in _TLS_SCHEMES:
        return True
    query = {k.lower(): [v.lower() for v in vs] for k, vs in parse_qs(parts.query).items()}
    return any(v in bad for key, bad in _NO_VERIFY.items() for v in query.get(key, []))


def clients_use_tls(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    servers = {s.resource.urn for s in redis_servers(resources)}
    for container in task_containers(resources):
        if container.urn in servers:
            continue
        weak = sorted({where for where, url in redis_urls(container.props) if _weak(url)})
        if not tls_switched_on(container.props):
            weak += [f"env {key}" for key in redis_host_settings(container.props)]
        if weak:
            yield Violation(
                f"{label(container)} must connect to Redis with a rediss:// URL that verifies "
                f"the server (no ssl_cert_reqs=none, no ssl_check_hostname=false), or switch its "
                f"host/port client to TLS; {', '.join(weak)} does not.",
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
