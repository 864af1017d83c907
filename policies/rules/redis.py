"""Redis server settings: TLS-only transport, authentication, ACLs, hardening, memory.

Stack rules, because a server's settings may live in a file another resource uploads (an init
container: docs/design.md#material-delivery); each check below judges one `RedisServer` and is
a pure function of it. Settings that cannot be read fail closed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from infra.redis_conf import min_memory_limit_mb
from policies.rules._acl import PLACEHOLDER, SUBSTITUTION, AclUser, acl_users, rule_tokens
from policies.rules._bitnami import BEFORE_7
from policies.rules._model import (
    ADVISORY,
    SERVICE,
    ConfigSchema,
    Resource,
    StackRule,
    Unreadable,
    Violation,
)
from policies.rules._props import (
    entries,
    envs,
    flag,
    healthcheck_tests,
    is_under,
    label,
    memory_mb,
    redis_label,
    text_at,
)
from policies.rules._props import shell_words as _shell_words
from policies.rules._redisconf import (
    CLIENT_BINARIES,
    OFFICIAL_MODULE_DIR,
    RedisServer,
    RedisSettings,
    Verdict,
    before_redis,
    recognised,
    redis_servers,
    shell_literal,
)
from policies.rules._service_shape import in_service_words

ServerCheck = Callable[[RedisServer, Mapping[str, Any]], Iterator[str]]

TLS_VERSIONS: Final = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_DEFAULT_PROTOCOLS: Final = ("TLSv1.2", "TLSv1.3")  # redis.conf: what Redis enables by default
_MEMORY_UNITS: Final = {
    "": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3,
    "gb": 1024**3,
}  # fmt: skip
# TLS 1.2 suites with forward secrecy (ECDHE) and an AEAD cipher: GCM or ChaCha20-Poly1305.
_STRONG_TLS12: Final = re.compile(
    r"ECDHE-(?:ECDSA|RSA)-(?:AES(?:128|256)-GCM-SHA(?:256|384)|CHACHA20-POLY1305)"
)
STRONG_TLS13_SUITES: Final = frozenset(
    {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
     "TLS_AES_128_CCM_SHA256"}
)  # fmt: skip
_EVICTING_POLICIES: Final = frozenset({"allkeys-lru", "allkeys-lfu", "volatile-lru",
                                       "volatile-lfu", "allkeys-random", "volatile-ttl",
                                       "volatile-random"})  # fmt: skip


def per_server(
    check: ServerCheck, *, sentinels: bool = True
) -> Callable[[Sequence[Resource], Mapping[str, Any]], Iterator[Violation]]:
    """Lift a per-server check to a stack check (one violation per message, on that server).

    `sentinels=False`: the check is about a data server (memory, persistence, databases,
    commands a sentinel does not have), so Redis Sentinels are not judged by it. A sentinel is
    judged by the transport and authentication rules: anyone who reaches an open one can
    repoint every client at a master of their own (SENTINEL SET, FAILOVER, REMOVE/MONITOR).
    """

    def stack_check(
        resources: Sequence[Resource], config: Mapping[str, Any]
    ) -> Iterator[Violation]:
        for server in redis_servers(resources):
            if server.sentinel and not sentinels:
                continue
            try:
                messages = list(check(server, config))
            except Unreadable as exc:
                subject = redis_label(server.resource)
                exc.subject = exc.subject or (
                    _in_sentinel_words(subject) if server.sentinel else subject
                )
                yield Violation("", server.resource.urn, unreadable=exc)
                continue
            if server.hint:
                messages = [_with_hint(m, server) for m in messages]
            if server.resource.type == SERVICE:
                messages = [in_service_words(m) for m in messages]
            if server.sentinel:
                messages = [_in_sentinel_words(m) for m in messages]
            for message in messages:
                yield Violation(message, server.resource.urn)

    stack_check.__name__ = check.__name__
    return stack_check


_SENTINEL_WORDS: Final = (
    ("Redis container ", "Redis Sentinel container "),
    ("Redis service ", "Redis Sentinel service "),
    ("in a redis.conf ", "in a sentinel config "),
)


def _in_sentinel_words(message: str) -> str:
    """A Redis rule's message for a sentinel: what it is, and the config file it reads."""
    for redis_word, sentinel_word in _SENTINEL_WORDS:
        message = message.replace(redis_word, sentinel_word, 1)
    return message


def _with_hint(message: str, server: RedisServer) -> str:
    """A Redis rule's message for a server a script of its image starts (redis-stack): what
    the script adds of its own, and where the options go (REDIS_ARGS, when it reads them)."""
    if server.options_env:
        message = message.replace(
            "on its command line or in a redis.conf uploaded by this stack",
            f"in envs {server.options_env} or in a {server.options_file} uploaded by this stack",
        )
    return f"{message} {server.hint}"


def recognised_or_reported(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    """Containers that may run Redis but show too little to be judged: said, never skipped."""
    for _, (resource, recognition) in recognised(resources):
        if recognition.verdict is Verdict.UNSURE:
            signs = ", ".join(recognition.signs)
            message = (
                f"Could not tell whether {label(resource)} runs Redis ({signs}); if it does, "
                f"start it with redis-server and its settings on the command line or in an "
                f"uploaded redis.conf so the Redis rules can judge it."
            )
            service = resource.type == SERVICE
            yield Violation(in_service_words(message) if service else message, resource.urn)


def _unknown(server: RedisServer, setting: str) -> str:
    """`setting` starts with the directive (e.g. "port 0", "aclfile (readable)")."""
    directive = setting.split(maxsplit=1)[0]
    if directive in server.settings.misspelled:
        return _misspelled(server, directive)
    return (
        f"{redis_label(server.resource)} must set {setting} on its command line or in "
        f"a redis.conf uploaded by this stack; {server.settings.why_unknown(directive)}, so "
        f"the setting is unknown."
    )


def _misspelled(server: RedisServer, directive: str) -> str:
    return (
        f"{redis_label(server.resource)} must give {directive} as two arguments, "
        f"--{directive} <value>; it gives {server.settings.misspelled[directive]}<value>, which "
        f"redis-server refuses ('Bad directive or wrong number of arguments'), so it does not "
        f"start."
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


def _links_over_tls(server: RedisServer) -> Iterator[str]:
    """Redis's own links: a cluster bus without tls-cluster, and replication without
    tls-replication, speak plaintext even when clients must use TLS (redis.conf TLS section)."""
    s = server.settings
    links = (
        ("cluster-enabled", "tls-cluster", "its cluster bus (gossip, failover and slot "
         "migration between nodes)"),
        # slaveof is replicaof's other name: the settings read both as one (_redisconf._ALIASES).
        ("replicaof", "tls-replication", "its link to its master (masterauth and every write)"),
    )  # fmt: skip
    for directive, tls_directive, link in links:
        value = (s.value(directive) or "").lower() if s.known(directive) else ""
        # `replicaof no one` is a primary (what a failover writes into a former replica).
        if not value or value == "no one" or (directive == "cluster-enabled" and value != "yes"):
            continue
        if not s.known(tls_directive):
            yield _unknown(server, f"{tls_directive} yes")
        elif (s.value(tls_directive) or "no").lower() != "yes":
            yield (
                f"{redis_label(server.resource)} must set {tls_directive} yes, as it sets "
                f"{s.spelled(directive)}; without it {link} speaks plaintext."
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
    for name in ("tls-port", "tls-cert-file", "tls-key-file", "tls-ca-cert-file"):
        if name in s.misspelled:
            yield _misspelled(server, name)
            return
    if missing:
        yield (
            f"{redis_label(server.resource)} must set {', '.join(missing)} so clients "
            f"can reach it over TLS with a certificate they can verify."
        )
    yield from _links_over_tls(server)


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
    floor = max(
        _version_index(str(config.get("minimumVersion", "TLSv1.2"))),
        _version_index(server.floor.tls_minimum),
    )
    if not tls_enabled(s):
        return
    if not s.known("tls-protocols"):
        yield _unknown(server, "tls-protocols")
        return
    protocols = enabled_protocols(s)
    if not protocols or any(
        p not in TLS_VERSIONS or TLS_VERSIONS.index(p) < floor for p in protocols
    ):
        allowed = " ".join(TLS_VERSIONS[floor:])
        yield (
            f'{redis_label(server.resource)} must set tls-protocols to "{allowed}" or '
            f"a subset; it enables a protocol older than {TLS_VERSIONS[floor]}, which this "
            f"stack's environment does not allow."
        )


def _version_index(version: str) -> int:
    return TLS_VERSIONS.index(version) if version in TLS_VERSIONS else TLS_VERSIONS.index("TLSv1.2")


def tls_enabled(s: RedisSettings) -> bool:
    """Whether the server listens for TLS (a tls-port other than 0 is set)."""
    port = s.value("tls-port")
    return bool(port) and port != "0"


def enabled_protocols(s: RedisSettings) -> list[str]:
    values = s.values("tls-protocols")
    return " ".join(values).split() if values is not None else list(_DEFAULT_PROTOCOLS)


def tls_ciphers_strong(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    """Every cipher directive where its protocol is enabled: ECDHE with AEAD only."""
    s = server.settings
    if not tls_enabled(s):
        return
    protocols = enabled_protocols(s)
    if any(p in protocols for p in ("TLSv1", "TLSv1.1", "TLSv1.2")):
        if not s.known("tls-ciphers"):
            yield _unknown(server, "tls-ciphers")
        else:
            weak = weak_tls12_ciphers(s.value("tls-ciphers"))
            if weak:
                yield (
                    f"{redis_label(server.resource)} must restrict tls-ciphers to ECDHE key "
                    f"exchange with AEAD ciphers (e.g. ECDHE-ECDSA-AES256-GCM-SHA384), as TLS 1.2 "
                    f"is enabled; it allows {', '.join(weak)} (no CBC, no RSA key exchange, no "
                    f"3DES/RC4/NULL/EXPORT)."
                )
    if "TLSv1.3" in protocols and s.known("tls-ciphersuites"):
        weak = weak_tls13_suites(s.value("tls-ciphersuites"))
        if weak:
            yield (
                f"{redis_label(server.resource)} must restrict tls-ciphersuites to "
                f"{', '.join(sorted(STRONG_TLS13_SUITES))}; it allows {', '.join(weak)}."
            )


def weak_tls12_ciphers(value: str | None) -> list[str]:
    """Entries of an OpenSSL TLS 1.2 cipher string that are not an explicit ECDHE+AEAD suite.

    Unset means OpenSSL's default list, which includes CBC and RSA key exchange. Aliases
    (DEFAULT, HIGH, ALL, ...) are judged weak because they expand to such suites.
    """
    if value is None:
        return ["OpenSSL's default list (tls-ciphers unset)"]
    enabled = [t for t in re.split(r"[:, ]+", value) if t and not t.startswith(("!", "-"))]
    if not enabled:
        return ["an empty list"]
    return [t for t in enabled if not _STRONG_TLS12.fullmatch(t.lstrip("+"))]


def weak_tls13_suites(value: str | None) -> list[str]:
    if value is None:  # OpenSSL's TLS 1.3 default: AES-GCM and ChaCha20-Poly1305 only
        return []
    return [t for t in re.split(r"[:, ]+", value) if t and t not in STRONG_TLS13_SUITES]


def prefer_server_ciphers(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if tls_enabled(s) and (s.value("tls-prefer-server-ciphers") or "no").lower() != "yes":
        yield (
            f"{redis_label(server.resource)} should set tls-prefer-server-ciphers yes "
            f"so the server's cipher order wins."
        )


def protected_mode_on(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("protected-mode") and s.complete:
        yield (
            f"{redis_label(server.resource)} must set protected-mode yes on its command line or "
            f"in a redis.conf uploaded by this stack; what its image does by default is unknown "
            f"(the official redis image, images built from it and mirrors of it turn it off)."
        )
    elif not s.known("protected-mode"):
        yield _unknown(server, "protected-mode yes")
    elif (s.value("protected-mode") or "yes").lower() != "yes":
        if before_redis(server.image, 3, 2):
            # Protected mode came in Redis 3.2: before it there is nothing to keep on, and
            # "the image turns it off" would not be true.
            why = (
                f"Redis before 3.2 (its image, {server.image}) has no protected mode, so run "
                f"Redis 3.2 or later"
            )
        elif not s.defaults_to("protected-mode"):
            why = "it is turned off"
        elif server.sentinel:
            why = "sentinel mode turns it off by default"
        else:
            why = "the image turns it off by default"
        yield f"{redis_label(server.resource)} must keep protected-mode yes; {why}."


def auth_required(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    for name in ("aclfile", "requirepass", "user"):
        if name in s.misspelled:
            yield _misspelled(server, name)
            return
    placeholders = list(_placeholder_passwords(server))
    if placeholders:
        yield from placeholders
        return
    # aclfile first: usually on argv, so this is decided even while files are unknown.
    if s.value("aclfile") or s.value("requirepass") or s.all("user"):
        yield from _passwordless_users(server)
        return
    why_password = s.told_unknown("requirepass")
    if why_password:
        yield (
            f"{redis_label(server.resource)} must require authentication (an aclfile with "
            f"users that have passwords); {why_password}, so whether it does is unknown."
        )
        return
    # Only Bitnami's setup reads ALLOW_EMPTY_PASSWORD (its options variable is <P>_EXTRA_FLAGS);
    # an image the pack cannot read may too. redis-server run directly ignores it.
    reads_variables = not s.complete or server.options_env.endswith("_EXTRA_FLAGS")
    empty_allowed = reads_variables and _empty_password_allowed(server)
    if not s.complete and not empty_allowed:
        yield _unknown(server, "aclfile")
        return
    why = (
        "ALLOW_EMPTY_PASSWORD with no password variable lets anyone who connects in"
        if empty_allowed
        else "anyone who connects is let in"
    )
    yield (
        f"{redis_label(server.resource)} must require authentication (an aclfile with "
        f"users that have passwords); {why}."
    )


_AS_WRITTEN: Final = (
    "is a placeholder (${NAME}, $NAME or {{ ... }}), which Redis does not expand, so the "
    "password is that text as this program writes it"
)
_NOTHING_EXPANDS: Final = (
    "is a placeholder (${NAME}, $NAME or {{ ... }}), which nothing expands (Docker starts "
    "redis-server in exec form, with no shell or script before it), so the password is that "
    "text as this program writes it"
)
_QUOTED: Final = (
    "is a placeholder its start script quotes ('$NAME' or \"\\$NAME\"), which the "
    "shell hands over as written, so the password is that text as this program writes it"
)
_NOT_RUN_IN_FILE: Final = (
    "is a command substitution ($(...) or `...`), which Redis does not run, so the password "
    "is that text as this program writes it"
)
_NOTHING_RUNS: Final = (
    "is a command substitution ($(...) or `...`), which nothing runs (Docker starts "
    "redis-server in exec form, with no shell or script before it), so the password is that "
    "text as this program writes it"
)
_HASHED_USERS: Final = (
    "load users with #<sha256> passwords from an aclfile delivered as a protected file"
)


def _placeholder_passwords(server: RedisServer) -> Iterator[str]:
    """requirepass, masterauth or an enabled ACL user's >password set to a placeholder or a
    command substitution such as `$(cat /run/secrets/pw)` where
    Redis takes it as written: in a file it reads (redis.conf and aclfiles have no variables),
    or on a command line nothing expands (`argv_literal`) or where its shell quotes it
    (`'$NAME'`: `shell_literal`). A shell or a script the pack cannot read may expand one on
    argv, and a start script that writes a file first leaves the file unreadable
    (_redisconf._rewritten): neither is judged here. requirepass is not judged when
    Redis ignores it (an aclfile or a `user default` line: requirepass_in_force)."""
    s = server.settings
    subject = redis_label(server.resource)
    for name in ("requirepass", "masterauth"):
        value = s.value(name)
        if value is None or (name == "requirepass" and not requirepass_in_force(server)):
            continue
        run = SUBSTITUTION.fullmatch(value.strip()) is not None
        if not run and PLACEHOLDER.fullmatch(value.strip()) is None:
            continue
        if s.from_file(name):
            where, why = "in the config file it loads", _NOT_RUN_IN_FILE if run else _AS_WRITTEN
            fix = f"Substitute it before redis-server reads the file, or {_HASHED_USERS}."
        elif server.argv_literal and s.from_argv(name):
            where, fix = "on its command line", f"Instead {_HASHED_USERS}."
            why = _NOTHING_RUNS if run else _NOTHING_EXPANDS
        elif s.from_argv(name) and shell_literal(value, server.resource.props):
            where, fix = "on its command line", f"Instead {_HASHED_USERS}."
            why = _QUOTED
        else:
            continue
        if name == "requirepass":
            yield (
                f"{subject} must require authentication with a password only its clients know; "
                f"requirepass {where} {why}. {fix}"
            )
        else:
            yield (
                f"{subject} must authenticate to its master with a password only the two of "
                f"them know; masterauth {where} {why}: a master that accepts it accepts anyone "
                f"who reads this program (else replication fails). {fix}"
            )
    users = _placeholder_users(server)
    placeholders = sorted(name for name, user in users.items() if user.placeholder_password)
    if placeholders:
        yield (
            f"{subject} must require authentication with a password only its clients know; "
            f"the >password of ACL {_users(placeholders)} {_AS_WRITTEN} (in a file, on a "
            f"command line Docker starts in exec form, with no shell to expand it, or quoted by "
            f"its start script, '>$NAME' or \">\\$NAME\", which the shell hands over as "
            f"written). Instead {_HASHED_USERS}."
        )
    substituted = sorted(name for name, user in users.items() if user.substituted_password)
    if substituted:
        yield (
            f"{subject} must require authentication with a password only its clients know; "
            f"the >password of ACL {_users(substituted)} {_NOT_RUN_IN_FILE} (in a file, or on "
            f"a command line Docker starts in exec form, with no shell to run it). Instead "
            f"{_HASHED_USERS}."
        )


def _placeholder_users(server: RedisServer) -> dict[str, AclUser]:
    """Enabled ACL users with a >placeholder or >$(command substitution) password Redis
    takes as written: from its aclfile or a config file, or on argv that nothing expands (a
    rule a shell may expand or run is read as some other password)."""
    props = server.resource.props
    lines = [
        values if from_file or server.argv_literal else tuple(_expanded(v, props) for v in values)
        for values, from_file in server.settings.users_by_origin()
        if values
    ]
    lines += server.aclfile_rules() or []
    return {
        name: user
        for name, user in acl_users(lines).items()
        if user.enabled and (user.placeholder_password or user.substituted_password)
    }


def _expanded(rule: str, props: Mapping[str, Any]) -> str:
    """An ACL rule as a shell may leave it: `>${PASS}` or `>$(cat f)` becomes some password,
    unless the script quotes it (`'>$PASS'`: `shell_literal`), which hands it over as written."""
    return " ".join(
        ">expanded"
        if w.startswith(">")
        and (PLACEHOLDER.fullmatch(w[1:]) or SUBSTITUTION.fullmatch(w[1:]))
        and not shell_literal(w, props)
        else w
        for w in rule_tokens(rule)
    )


# Bitnami's redis, valkey and keydb images start without a password when ALLOW_EMPTY_PASSWORD
# is on and none of these is set (their entrypoints' own redis.conf is never visible).
_PASSWORD_VARIABLE: Final = re.compile(r"^(?:REDIS|VALKEY|KEYDB)_PASSWORD(?:_FILE)?$")
# Bitnami's redis-sentinel: the sentinel's own password (REDIS_MASTER_PASSWORD is the one it
# sends to the master, and protects nothing of the sentinel).
_SENTINEL_PASSWORD_VARIABLE: Final = re.compile(r"^(?:REDIS|VALKEY)_SENTINEL_PASSWORD(?:_FILE)?$")


def _empty_password_allowed(server: RedisServer) -> bool:
    given = dict(envs(server.resource.props))
    allowed = given.get("ALLOW_EMPTY_PASSWORD", "").strip().lower() in ("yes", "true", "1")
    variable = _SENTINEL_PASSWORD_VARIABLE if server.sentinel else _PASSWORD_VARIABLE
    return allowed and not any(v for k, v in given.items() if variable.match(k))


def _passwordless_users(server: RedisServer) -> Iterator[str]:
    """Enabled users marked `nopass`: AUTH as them succeeds with any password (REDIS-02).

    `default` is left to redis-default-user-disabled (REDIS-03), which refuses it enabled at
    all. An unreadable ACL is judged by the rules that fail closed on it. A user with no
    password and no `nopass` cannot authenticate at all, so it is no finding.
    """
    rules = server.acl_rules()
    if rules is None:
        return
    open_users = sorted(
        name
        for name, user in acl_users(rules).items()
        if name != "default" and user.enabled and user.nopass
    )
    if open_users:
        yield (
            f"{redis_label(server.resource)} must give ACL {_users(open_users)} a password "
            f"(#<sha256>) instead of nopass; AUTH as a nopass user succeeds with any password."
        )


def requirepass_in_force(server: RedisServer) -> bool:
    """Whether requirepass gives the default user its password: set, with no aclfile (redis.conf
    SECURITY: Redis then ignores it) and no `user default` directive, whose rules Redis applies
    instead wherever it stands (redis-server 7.0.15: `requirepass s3cret` with `user default on
    nopass` before or after it leaves the default user nopass,
    tests/integration/test_redis_config_differential.py)."""
    s = server.settings
    if not s.value("requirepass") or s.value("aclfile"):
        return False
    return not any(values[0] == "default" for values in s.all("user") if values)


def default_user_disabled(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules()
    if rules is None:
        yield _unknown(server, "aclfile (readable) with 'user default off'")
        return
    default = acl_users(rules)["default"]
    if not default.enabled:
        return
    # requirepass gives the default user a password (redis.conf SECURITY), which the ACL model
    # (only `user` lines) does not see: then it is not anonymous access but a shared identity.
    # Not with an aclfile or a `user default` line, whose rules Redis applies instead
    # (requirepass_in_force).
    requirepass = requirepass_in_force(server)
    if requirepass or not default.nopass:
        source = " (requirepass)" if requirepass else ""
        why = (
            f"every client that knows its password{source} acts as it, with all of its "
            f"rights: give each client its own ACL user"
        )
    else:
        why = "unauthenticated connections act as it"
    yield (
        f"{redis_label(server.resource)} must disable the default user "
        f"('user default off' in its ACL); {why}."
    )


def acl_least_privilege(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    rules = server.acl_rules()
    if rules is None:
        yield _unknown(server, "aclfile (readable)")
        return
    # Two identities need an admin command and get exactly that: a reload identity (CONFIG
    # SET and ACL LOAD only: rotation reloads TLS files and users without a restart) and a
    # metrics exporter (INFO and ACL LOG: Redis's own security counters; and, beside INFO
    # only, BGREWRITEAOF: the AOF rewrite after a data-key rotation, docs/day2.md). Neither
    # may touch a key or a channel.
    privileged = sorted(
        name
        for name, user in acl_users(rules).items()
        if user.enabled and user.privileged and not (user.reload_only or user.exporter_only)
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
    rules = server.acl_rules()
    if rules is None:
        return  # the mandatory ACL rules already fail closed on an unreadable ACL
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
    rules = server.acl_rules() or []  # unreadable: requirepass below is still judged
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
    why_modules = s.told_unknown("loadmodule")
    if why_modules:
        yield f"{redis_label(server.resource)} must load no modules; {why_modules}."
    if s.all("loadmodule"):
        bad.append("loadmodule")
    if bad:
        why = ""
        if any(s.defaults_to(name) for name in bad):
            why = f" {BEFORE_7}."
        if any(v and v[0].startswith(OFFICIAL_MODULE_DIR) for v in s.all("loadmodule")):
            why = (
                f" The official redis image's docker-entrypoint.sh (Redis 8 and later) loads "
                f"every module in {OFFICIAL_MODULE_DIR} after the options it is given: start "
                f'redis-server without it (entrypoints: ["redis-server"]) or run Redis 7.'
            )
        yield (
            f"{redis_label(server.resource)} must set {', '.join(bad)} to no (and load "
            f"no modules); they let a client reconfigure or extend the server.{why}"
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
    limit_mb = memory_mb(server.resource.props)
    if not maxmemory or not limit_mb or maxmemory >= limit_mb * 1024 * 1024:
        yield (
            f"{redis_label(server.resource)} must set maxmemory above 0 and below the "
            f"container's memory limit (memory, in MB), so it evicts keys before the kernel "
            f"kills it."
        )


def memory_fork_headroom(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    """REDIS-15: a memory limit with room for the persistence fork beside maxmemory.

    An AOF rewrite or an RDB save forks Redis; under writes the copy-on-write child can need the
    whole dataset again, so parent and child together reach about twice maxmemory, and the
    kernel kills Redis mid-rewrite (measured: docs/day2.md, a 256 MiB limit for 192 MiB of
    maxmemory under the rotation load test). The program refuses less than
    infra/redis_conf.min_memory_limit_mb (twice maxmemory, plus the process, one reply at the
    output-buffer limit and a full ACL LOG); the pack advises it:
    as a mandatory rule it would reject most stacks that set maxmemory at all, for a loss of
    availability rather than of confidentiality or integrity.
    """
    s = server.settings
    if not all(s.known(name) for name in ("maxmemory", "appendonly", "save")):
        return  # an unreadable config is redis-maxmemory-below-limit's finding
    maxmemory = memory_bytes(s.value("maxmemory") or "0")
    limit_mb = memory_mb(server.resource.props)
    if not maxmemory or not limit_mb or maxmemory >= limit_mb * _MIB:
        return  # no maxmemory below a limit at all: redis-maxmemory-below-limit's finding
    forks = (s.value("appendonly") or "no").lower() == "yes" or s.value("save") != ""
    maxmemory_mb = math.ceil(maxmemory / _MIB)
    needed = min_memory_limit_mb(maxmemory_mb)
    if forks and limit_mb < needed:
        yield (
            f"{redis_label(server.resource)} should have a memory limit of at least {needed} "
            f"MB for its maxmemory (twice maxmemory plus {needed - 2 * maxmemory_mb} MB): its "
            f"persistence (appendonly, save) forks Redis, and under writes the fork can need the "
            f"dataset again, so the kernel kills Redis mid-rewrite. Raise memory, lower "
            f'maxmemory, or turn persistence off (appendonly no, save "") for a pure cache.'
        )


_MIB: Final = 1 << 20
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


def _normal_output_limit(server: RedisServer) -> int | None:
    """The hard output-buffer limit (bytes) of normal clients; None when unset (Redis's own
    default, 0: unlimited). The directive holds one or more `class hard soft seconds` groups
    and may repeat, one line per class: the last group of a class wins (argv comes last)."""
    words: list[str] = []
    for occurrence in server.settings.all("client-output-buffer-limit"):
        words += " ".join(occurrence).split()
    hard: int | None = None
    for start in range(0, len(words) - 3, 4):
        if words[start].lower() == "normal":
            hard = memory_bytes(words[start + 1])
    return hard


def client_output_bounded(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    s = server.settings
    if not s.known("client-output-buffer-limit"):
        yield _unknown(server, "client-output-buffer-limit")
        return
    hard = _normal_output_limit(server)
    maxmemory = memory_bytes(s.value("maxmemory") or "0") if s.known("maxmemory") else None
    if not hard or (maxmemory and hard > maxmemory):
        yield (
            f"{redis_label(server.resource)} should bound the replies of normal clients: set "
            f"client-output-buffer-limit normal <hard> <soft> <seconds> with a hard limit above 0 "
            f"and at most maxmemory; without it one MGET naming a large key many times builds a "
            f"reply of gigabytes, past the container's memory limit."
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
    for where, m in entries(props, "mounts"):
        target = text_at(m, where, "target") or ""
        if target and is_under(data_dir, target) and text_at(m, where, "type") == "bind":
            yield _data_message(server)
    for where, v in entries(props, "volumes"):
        target = text_at(v, where, "containerPath") or ""
        if target and is_under(data_dir, target) and text_at(v, where, "hostPath"):
            yield _data_message(server)


def _data_message(server: RedisServer) -> str:
    return (
        f"{redis_label(server.resource)} should keep its data directory on a named "
        f"volume of this stack, not a host path."
    )


def healthcheck_uses_tls(server: RedisServer, _config: Mapping[str, Any]) -> Iterator[str]:
    tests = healthcheck_tests(server.resource.props)
    words = [w for t in tests for w in (_shell_words(t) if " " in t else [t])]
    cli_used = any(w.rsplit("/", 1)[-1] in CLIENT_BINARIES for w in words)
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
    for where, m in entries(props, "mounts"):
        target = text_at(m, where, "target") or ""
        if target and is_under(key, target):
            holders.append((target, flag(m.get("readOnly"), f"{where}.readOnly") is True))
    for where, v in entries(props, "volumes"):
        target = text_at(v, where, "containerPath") or ""
        if target and is_under(key, target):
            holders.append((target, flag(v.get("readOnly"), f"{where}.readOnly") is True))
    if holders:
        _, read_only = max(holders, key=lambda h: len(h[0]))  # the innermost mount wins
    else:
        read_only = flag(props.get("readOnly"), "readOnly") is True
    if not read_only:
        yield (
            f"{redis_label(server.resource)} must mount the directory holding its TLS "
            f"key read-only; the server could rewrite its own key material."
        )


_TLS_CONFIG: Final[ConfigSchema] = {
    "minimumVersion": {
        "type": "string",
        "enum": ["TLSv1.2", "TLSv1.3"],
        "default": "TLSv1.2",
        "description": "Oldest TLS version a Redis server may enable (production: TLSv1.3).",
    }
}


RULES: Final = (
    StackRule(
        name="redis-recognised",
        description="Containers that may run Redis are recognised or reported, never skipped.",
        check=recognised_or_reported,
        refs=("CHECK-01",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-tls-only",
        description="Redis servers accept TLS connections only (port 0).",
        check=per_server(tls_only),
        refs=("TLS-01",),
    ),
    StackRule(
        name="redis-tls-configured",
        description=(
            "Redis servers have a TLS port, a certificate, a key and a CA to verify clients."
        ),
        check=per_server(tls_configured),
        refs=("TLS-02",),
    ),
    StackRule(
        name="redis-client-cert-required",
        description="Redis servers require client certificates (mTLS).",
        check=per_server(client_cert_required),
        refs=("TLS-03",),
    ),
    StackRule(
        name="redis-tls-protocols-modern",
        description="Redis servers enable only TLS versions at or above the configured minimum.",
        check=per_server(tls_protocols_modern),
        refs=("TLS-04", "STACK-02"),
        config_schema=_TLS_CONFIG,
    ),
    StackRule(
        name="redis-tls-ciphers-strong",
        description="Redis servers allow only ECDHE key exchange with AEAD ciphers.",
        check=per_server(tls_ciphers_strong),
        refs=("TLS-05",),
    ),
    StackRule(
        name="redis-tls-prefer-server-ciphers",
        description="Redis servers with TLS prefer the server's cipher order.",
        check=per_server(prefer_server_ciphers),
        refs=("TLS-05",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-protected-mode-on",
        description="Redis servers keep protected mode on.",
        check=per_server(protected_mode_on),
        refs=("REDIS-01",),
    ),
    StackRule(
        name="redis-auth-required",
        description="Redis servers require clients to authenticate.",
        check=per_server(auth_required),
        refs=("REDIS-02",),
    ),
    StackRule(
        name="redis-default-user-disabled",
        description="The Redis default user is disabled.",
        check=per_server(default_user_disabled),
        refs=("REDIS-03",),
    ),
    StackRule(
        name="redis-acl-least-privilege",
        description="Redis ACL users cannot run dangerous or admin commands.",
        check=per_server(acl_least_privilege),
        refs=("REDIS-04",),
    ),
    StackRule(
        name="redis-acl-key-scope",
        description="Redis ACL users are limited to their key prefix.",
        check=per_server(acl_key_scope),
        refs=("REDIS-05",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-acl-hashed-passwords",
        description="Redis ACL passwords are stored as SHA-256 hashes.",
        check=per_server(acl_hashed_passwords),
        refs=("REDIS-06",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-escape-hatches-disabled",
        description=(
            "Redis servers keep DEBUG, MODULE and protected CONFIG disabled and load no modules."
        ),
        check=per_server(escape_hatches_disabled, sentinels=False),
        refs=("REDIS-08",),
    ),
    StackRule(
        name="redis-rename-command-not-sole-control",
        description="Redis servers restrict commands with ACLs, not rename-command.",
        check=per_server(rename_command_not_sole_control),
        refs=("REDIS-09",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-maxmemory-below-limit",
        description="Redis servers set maxmemory below their container's memory limit.",
        check=per_server(maxmemory_below_limit, sentinels=False),
        refs=("REDIS-10", "cis-docker-5.11"),
    ),
    StackRule(
        name="redis-memory-fork-headroom",
        description="Redis servers that persist have a memory limit of twice maxmemory plus "
        "headroom (the rewrite fork).",
        check=per_server(memory_fork_headroom, sentinels=False),
        refs=("REDIS-15", "cis-docker-5.11"),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-bulk-length-capped",
        description="Redis servers cap one allocation (proto-max-bulk-len) well below maxmemory.",
        check=per_server(bulk_length_capped, sentinels=False),
        refs=("REDIS-12", "cis-docker-5.11"),
    ),
    StackRule(
        name="redis-client-output-bounded",
        description="Redis servers bound the output buffer of normal clients.",
        check=per_server(client_output_bounded, sentinels=False),
        refs=("REDIS-14", "cis-docker-5.11"),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-acl-command-allowlist",
        description="Redis ACL users get an explicit allowlist of commands, never categories.",
        check=per_server(acl_command_allowlist),
        refs=("REDIS-13",),
    ),
    StackRule(
        name="redis-single-database",
        description="Redis servers have one database.",
        check=per_server(single_database, sentinels=False),
        refs=("REDIS-13",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-maxmemory-policy-evicts",
        description="Redis caches evict keys when memory is full.",
        check=per_server(maxmemory_policy_evicts, sentinels=False),
        refs=("REDIS-10",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-data-on-named-volume",
        description="Redis data lives on a named volume, not a host path.",
        check=per_server(data_on_named_volume, sentinels=False),
        refs=("REDIS-11",),
        enforcement=ADVISORY,
    ),
    StackRule(
        name="redis-healthcheck-uses-tls",
        description="Redis health checks speak TLS.",
        check=per_server(healthcheck_uses_tls),
        refs=("RES-05", "TLS-01"),
    ),
    StackRule(
        name="redis-tls-key-mount-read-only",
        description="Redis servers read their TLS key from a read-only location.",
        check=per_server(tls_key_mount_read_only),
        refs=("TLS-10", "cis-docker-5.13"),
    ),
)
