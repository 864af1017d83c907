"""Redis server settings: TLS-only transport, authentication, ACLs, hardening, memory.

Stack rules, because a server's settings may live in a file another resource uploads (an init
container, TEAM.md contract 2); each check below judges one `RedisServer` and is a pure
function of it. Settings that cannot be read fail closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from policies.rules._acl import acl_users
from policies.rules._model import Resource, StackRule, Violation
from policies.rules._props import (
    healthcheck_tests,
    is_under,
    items,
    mapping,
    number,
    redis_label,
    text,
)
from policies.rules._props import shell_words as _shell_words
from policies.rules._redisconf import RedisServer, redis_servers

ServerCheck = Callable[[RedisServer, Mapping[str, Any]], Iterator[str]]

TLS_VERSIONS: Final = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_DEFAULT_PROTOCOLS: Final = ("TLSv1.2", "TLSv1.3")  # redis.conf: what Redis enables by default
_MEMORY_UNITS: Final = {
    "": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3,
    "gb": 1024**3,
}  # fmt: skip
_WEAK_CIPHER_TOKENS: Final = frozenset(
    {"ALL", "COMPLEMENTOFALL", "ANULL", "ENULL", "NULL", "RC4", "3DES", "DES", "MD5", "EXPORT",
     "EXP", "LOW", "SSLV3", "ADH", "AECDH"}
)  # fmt: skip
_EVICTING_POLICIES: Final = frozenset({"allkeys-lru", "allkeys-lfu", "volatile-lru",
                                       "volatile-lfu", "allkeys-random", "volatile-ttl",
                                       "volatile-random"})  # fmt: skip


def per_server(
    check: ServerCheck,
) -> Callable[[Sequence[Resource], Mapping[str, Any]], Iterator[Violation]]:
    """Lift a per-server check to a stack check (one violation per message, on that server)."""

    def stack_check(
        resources: Sequence[Resource], config: Mapping[str, Any]
    ) -> Iterator[Violation]:
        for server in redis_servers(resources):
            for message in check(server, config):
                yield Violation(message, server.resource.urn)

    stack_check.__name__ = check.__name__
    return stack_check


def _unknown(server: RedisServer, setting: str) -> str:
    return (
        f"{redis_label(server.resource)} must set {setting} on its command line or in "
        f"a redis.conf uploaded by this stack; its config file cannot be read, so the setting "
        f"is unknown."
    )


def tls_only(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("port"):
        yield _unknown(server, "port 0")
    elif s.value("port") != "0":
        yield (
            f"{redis_label(server.resource)} must set port 0 (with tls-port) so it "
            f"accepts TLS connections only; it listens for plaintext connections."
        )


def tls_configured(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    required = {
        "tls-port": "tls-port",
        "tls-cert-file": "tls-cert-file",
        "tls-key-file": "tls-key-file",
    }
    missing = [
        f"{setting} (not 0)" if name == "tls-port" else setting
        for setting, name in required.items()
        if not s.value(name) or (name == "tls-port" and s.value(name) == "0")
    ]
    if not (s.value("tls-ca-cert-file") or s.value("tls-ca-cert-dir")):
        missing.append("tls-ca-cert-file")
    if missing:
        yield (
            f"{redis_label(server.resource)} must set {', '.join(missing)} so clients "
            f"can reach it over TLS with a certificate they can verify."
        )


def client_cert_required(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("tls-auth-clients"):
        yield _unknown(server, "tls-auth-clients yes")
    elif (s.value("tls-auth-clients") or "yes").lower() != "yes":
        yield (
            f"{redis_label(server.resource)} must set tls-auth-clients yes; it accepts "
            f"TLS clients without a client certificate."
        )


def tls_protocols_modern(server: RedisServer, config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    minimum = str(config.get("minimumVersion", "TLSv1.2"))
    floor = (
        TLS_VERSIONS.index(minimum) if minimum in TLS_VERSIONS else TLS_VERSIONS.index("TLSv1.2")
    )
    if not s.known("tls-protocols"):
        yield _unknown(server, "tls-protocols")
        return
    values = s.values("tls-protocols")
    protocols = " ".join(values).split() if values is not None else list(_DEFAULT_PROTOCOLS)
    if not protocols or any(
        p not in TLS_VERSIONS or TLS_VERSIONS.index(p) < floor for p in protocols
    ):
        allowed = " ".join(TLS_VERSIONS[floor:])
        yield (
            f'{redis_label(server.resource)} must set tls-protocols to "{allowed}" or '
            f"a subset; it enables a protocol older than {TLS_VERSIONS[floor]}."
        )


def tls_ciphers_strong(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    ciphers = s.value("tls-ciphers") or ""
    enabled = {
        t.upper() for t in re.split(r"[:, ]+", ciphers) if t and not t.startswith(("!", "-"))
    }
    if enabled & _WEAK_CIPHER_TOKENS:
        yield (
            f"{redis_label(server.resource)} must restrict tls-ciphers to ECDHE with "
            f"AEAD suites; its cipher string enables weak or anonymous ciphers."
        )
    if (s.value("tls-prefer-server-ciphers") or "no").lower() != "yes":
        yield (
            f"{redis_label(server.resource)} should set tls-prefer-server-ciphers yes "
            f"so the server's cipher order wins."
        )


def protected_mode_on(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("protected-mode"):
        yield _unknown(server, "protected-mode yes")
    elif (s.value("protected-mode") or "yes").lower() != "yes":
        yield (f"{redis_label(server.resource)} must keep protected-mode yes; it is turned off.")


def auth_required(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    # aclfile first: usually on argv, so this is decided even while files are unknown.
    if s.value("aclfile") or s.value("requirepass") or s.all("user"):
        return
    if not s.complete:
        yield _unknown(server, "aclfile")
        return
    yield (
        f"{redis_label(server.resource)} must require authentication (an aclfile with "
        f"users that have passwords); anyone who connects is let in."
    )


def default_user_disabled(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules()
    if rules is None:
        yield _unknown(server, "aclfile (readable) with 'user default off'")
        return
    if acl_users(rules)["default"].enabled:
        yield (
            f"{redis_label(server.resource)} must disable the default user "
            f"('user default off' in its ACL); unauthenticated connections act as it."
        )


def acl_least_privilege(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules()
    if rules is None:
        yield _unknown(server, "aclfile (readable)")
        return
    privileged = sorted(
        name for name, user in acl_users(rules).items() if user.enabled and user.privileged
    )
    if privileged:
        yield (
            f"{redis_label(server.resource)} must not let ACL {_users(privileged)} run "
            f"dangerous or admin commands; end the rules with -@dangerous -@admin and grant no "
            f"such command."
        )


def _users(names: list[str]) -> str:
    return ("user " if len(names) == 1 else "users ") + ", ".join(names)


def acl_key_scope(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules() or []
    broad = sorted(
        name
        for name, user in acl_users(rules).items()
        if user.enabled and (user.all_keys or user.all_channels)
    )
    if broad:
        yield (
            f"{redis_label(server.resource)} should limit ACL {_users(broad)} to a key prefix "
            f"(resetkeys ~prefix:*) and no channels (resetchannels)."
        )


def acl_hashed_passwords(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules() or []
    cleartext = sorted(n for n, u in acl_users(rules).items() if u.cleartext_password)
    if cleartext or server.settings.value("requirepass"):
        yield (
            f"{redis_label(server.resource)} should store passwords as #<sha256> hashes "
            f"in its ACL, not as >password rules or requirepass."
        )


def escape_hatches_disabled(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    bad = []
    for name in ("enable-protected-configs", "enable-debug-command", "enable-module-command"):
        if not s.known(name):
            yield _unknown(server, f"{name} no")
        elif (s.value(name) or "no").lower() != "no":
            bad.append(name)
    if s.all("loadmodule"):
        bad.append("loadmodule")
    if bad:
        yield (
            f"{redis_label(server.resource)} must set {', '.join(bad)} to no (and load "
            f"no modules); they let a client reconfigure or extend the server."
        )


def rename_command_not_sole_control(
    server: RedisServer, _config: Mapping[str, Any]
) -> Iterator[str]:
    if server.settings.all("rename-command") and not (server.acl_rules() or []):
        yield (
            f"{redis_label(server.resource)} should restrict commands with ACL users "
            f"instead of rename-command, which Redis deprecates."
        )


def memory_bytes(value: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _MEMORY_UNITS:
        return None
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()]


def maxmemory_below_limit(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("maxmemory"):
        yield _unknown(server, "maxmemory")
        return
    maxmemory = memory_bytes(s.value("maxmemory") or "0")
    limit_mb = number(server.resource.props.get("memory"))
    if not maxmemory or not limit_mb or maxmemory >= limit_mb * 1024 * 1024:
        yield (
            f"{redis_label(server.resource)} must set maxmemory above 0 and below the "
            f"container's memory limit (memory, in MB), so it evicts keys before the kernel "
            f"kills it."
        )


# Redis's own default: 512 MiB in one argument, or one string SETRANGE/APPEND may build.
_DEFAULT_BULK_BYTES: Final = 512 * 1024 * 1024
# maxmemory is checked before a command runs, so one allocation must leave the headroom
# between maxmemory and the container limit untouched: at most this share of maxmemory.
_BULK_SHARE_OF_MAXMEMORY: Final = 8


def bulk_length_capped(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not (s.known("proto-max-bulk-len") and s.known("maxmemory")):
        yield _unknown(server, "proto-max-bulk-len")
        return
    configured = s.value("proto-max-bulk-len")
    bulk = memory_bytes(configured) if configured else _DEFAULT_BULK_BYTES
    maxmemory = memory_bytes(s.value("maxmemory") or "0")
    if not bulk or not maxmemory or bulk * _BULK_SHARE_OF_MAXMEMORY > maxmemory:
        yield (
            f"{redis_label(server.resource)} must cap single allocations: set "
            f"proto-max-bulk-len to the largest value it stores (at most "
            f"1/{_BULK_SHARE_OF_MAXMEMORY} of maxmemory); one SETRANGE or APPEND may otherwise "
            f"allocate up to 512 MiB at once, past maxmemory and the container's memory limit."
        )


def acl_command_allowlist(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules()
    if rules is None:
        yield _unknown(server, "aclfile (readable)")
        return
    by_category = sorted(
        name
        for name, user in acl_users(rules).items()
        if user.enabled and (user.all_commands or user.granted_categories)
    )
    if by_category:
        yield (
            f"{redis_label(server.resource)} must grant ACL {_users(by_category)} an explicit "
            f"allowlist of commands ('-@all +get +set ...'), not categories or allcommands: a "
            f"category holds commands the client never sends (SETRANGE, COPY ... DB, DUMP, "
            f"CLIENT) and grows with each Redis release."
        )


def single_database(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("databases"):
        yield _unknown(server, "databases")
        return
    if (s.value("databases") or "16").strip() != "1":
        yield (
            f"{redis_label(server.resource)} should set databases 1, so SELECT, MOVE and "
            f"COPY ... DB have no other database to reach."
        )


def maxmemory_policy_evicts(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    if (server.settings.value("maxmemory-policy") or "noeviction") not in _EVICTING_POLICIES:
        yield (
            f"{redis_label(server.resource)} should set maxmemory-policy allkeys-lru or "
            f"allkeys-lfu, as a cache evicts instead of failing writes."
        )


def data_on_named_volume(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    data_dir = server.settings.value("dir") or "/data"
    props = server.resource.props
    for mount in items(props.get("mounts")):
        m = mapping(mount)
        target = text(m.get("target")) or ""
        if target and is_under(data_dir, target) and text(m.get("type")) == "bind":
            yield _data_message(server)
    for volume in items(props.get("volumes")):
        v = mapping(volume)
        target = text(v.get("containerPath")) or ""
        if target and is_under(data_dir, target) and text(v.get("hostPath")):
            yield _data_message(server)


def _data_message(server: RedisServer) -> str:
    return (
        f"{redis_label(server.resource)} should keep its data directory on a named "
        f"volume of this stack, not a host path."
    )


def healthcheck_uses_tls(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    tests = healthcheck_tests(server.resource.props)
    words = [w for t in tests for w in (_shell_words(t) if " " in t else [t])]
    cli_used = any(w.rsplit("/", 1)[-1] in ("redis-cli", "valkey-cli") for w in words)
    if cli_used and "--tls" not in words:
        yield (
            f"{redis_label(server.resource)} must run its health check over TLS "
            f"(redis-cli --tls with the CA and a client certificate); plaintext cannot reach a "
            f"TLS-only server."
        )


def tls_key_mount_read_only(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    key = server.settings.value("tls-key-file")
    if not key:
        return
    props = server.resource.props
    holders: list[tuple[str, bool]] = []
    for mount in items(props.get("mounts")):
        m = mapping(mount)
        target = text(m.get("target")) or ""
        if target and is_under(key, target):
            holders.append((target, m.get("readOnly") is True))
    for volume in items(props.get("volumes")):
        v = mapping(volume)
        target = text(v.get("containerPath")) or ""
        if target and is_under(key, target):
            holders.append((target, v.get("readOnly") is True))
    if holders:
        _, read_only = max(holders, key=lambda h: len(h[0]))  # the innermost mount wins
    else:
        read_only = props.get("readOnly") is True
    if not read_only:
        yield (
            f"{redis_label(server.resource)} must mount the directory holding its TLS "
            f"key read-only; the server could rewrite its own key material."
        )


_TLS_CONFIG: Final = {
    "minimumVersion": {
        "type": "string",
        "enum": ["TLSv1.2", "TLSv1.3"],
        "default": "TLSv1.2",
        "description": "Oldest TLS version a Redis server may enable (production: TLSv1.3).",
    }
}


def _rule(
    name: str,
    description: str,
    check: ServerCheck,
    refs: tuple[str, ...],
    enforcement: str = "mandatory",
    config_schema: Mapping[str, Mapping[str, Any]] | None = None,
) -> StackRule:
    return StackRule(
        name=name,
        description=description,
        check=per_server(check),
        refs=refs,
        enforcement="advisory" if enforcement == "advisory" else "mandatory",
        config_schema=config_schema or {},
    )


RULES: Final = (
    _rule("redis-tls-only", "Redis servers accept TLS connections only (port 0).",
          tls_only, ("TLS-01",)),
    _rule("redis-tls-configured",
          "Redis servers have a TLS port, a certificate, a key and a CA to verify clients.",
          tls_configured, ("TLS-02",)),
    _rule("redis-client-cert-required", "Redis servers require client certificates (mTLS).",
          client_cert_required, ("TLS-03",)),
    _rule("redis-tls-protocols-modern",
          "Redis servers enable only TLS versions at or above the configured minimum.",
          tls_protocols_modern, ("TLS-04",), config_schema=_TLS_CONFIG),
    _rule("redis-tls-ciphers-strong",
          "Redis servers offer strong ciphers and prefer the server's cipher order.",
          tls_ciphers_strong, ("TLS-05",), "advisory"),
    _rule("redis-protected-mode-on", "Redis servers keep protected mode on.",
          protected_mode_on, ("REDIS-01",)),
    _rule("redis-auth-required", "Redis servers require clients to authenticate.",
          auth_required, ("REDIS-02",)),
    _rule("redis-default-user-disabled", "The Redis default user is disabled.",
          default_user_disabled, ("REDIS-03",)),
    _rule("redis-acl-least-privilege",
          "Redis ACL users cannot run dangerous or admin commands.",
          acl_least_privilege, ("REDIS-04",)),
    _rule("redis-acl-key-scope", "Redis ACL users are limited to their key prefix.",
          acl_key_scope, ("REDIS-05",), "advisory"),
    _rule("redis-acl-hashed-passwords", "Redis ACL passwords are stored as SHA-256 hashes.",
          acl_hashed_passwords, ("REDIS-06",), "advisory"),
    _rule("redis-escape-hatches-disabled",
          "Redis servers keep DEBUG, MODULE and protected CONFIG disabled and load no modules.",
          escape_hatches_disabled, ("REDIS-08",)),
    _rule("redis-rename-command-not-sole-control",
          "Redis servers restrict commands with ACLs, not rename-command.",
          rename_command_not_sole_control, ("REDIS-09",), "advisory"),
    _rule("redis-maxmemory-below-limit",
          "Redis servers set maxmemory below their container's memory limit.",
          maxmemory_below_limit, ("REDIS-10", "cis-docker-5.11")),
    _rule("redis-bulk-length-capped",
          "Redis servers cap one allocation (proto-max-bulk-len) well below maxmemory.",
          bulk_length_capped, ("REDIS-12", "cis-docker-5.11")),
    _rule("redis-acl-command-allowlist",
          "Redis ACL users get an explicit allowlist of commands, never categories.",
          acl_command_allowlist, ("REDIS-13",)),
    _rule("redis-single-database", "Redis servers have one database.",
          single_database, ("REDIS-13",), "advisory"),
    _rule("redis-maxmemory-policy-evicts", "Redis caches evict keys when memory is full.",
          maxmemory_policy_evicts, ("REDIS-10",), "advisory"),
    _rule("redis-data-on-named-volume", "Redis data lives on a named volume, not a host path.",
          data_on_named_volume, ("REDIS-11",), "advisory"),
    _rule("redis-healthcheck-uses-tls", "Redis health checks speak TLS.",
          healthcheck_uses_tls, ("RES-05", "TLS-01")),
    _rule("redis-tls-key-mount-read-only",
          "Redis servers read their TLS key from a read-only location.",
          tls_key_mount_read_only, ("TLS-10", "cis-docker-5.13")),
)  # fmt: skip
