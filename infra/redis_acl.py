"""The Redis ACL file: who may connect and what each user may do.

One definition shared by the Pulumi program and the integration tests, so the tests exercise
exactly the ACL a stack deploys. Passwords appear only as SHA-256 hashes (`#<hex>`, see
https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/), so the rendered
file reveals nothing usable and policies can read it in full.

Every user is an explicit allowlist of commands (`-@all +cmd ...`), never categories: a
category grows with each Redis release and already holds commands the app never sends
(`SETRANGE`, `APPEND`, `COPY ... DB`, `DUMP`, `OBJECT`, `CLIENT TRACKING`, ...). A user is one
`AclUserRules` returned by `users()`; adding an identity is adding one entry there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

APP_USER: Final = "app"
HEALTHCHECK_USER: Final = "healthcheck"
RELOAD_USER: Final = "reload"
EXPORTER_USER: Final = "exporter"
ROTATION_USER: Final = "rotation"
DEFAULT_KEY_PREFIX: Final = "cache:"

# Exactly the commands the serving app sends (app/secure_cache/client.py, core.py):
# reads are GET (one name) and MGET (several, or a key under rotation), writes SET/DEL (GET and
# SET are packed by hand in resp.py, not by name), and the liveness probe PING. Nothing that
# only the rotation pass needs: that runs as ROTATION_USER, in its own container.
# AUTH and HELLO are not listed: Redis lets every connection run them, whatever its ACL.
# tests/integration/test_redis_app_acl.py records a real client's traffic on a real
# server and asserts it is this set, no more and no less.
APP_COMMANDS: Final = ("del", "get", "mget", "ping", "set")
# The data-key rotation pass (`python -m secure_cache rotate`, core.py `rotation`), run on
# demand by scripts/rotate.sh in its own one-shot container (infra/components/rotation.py):
# SCAN + STRLEN (sizing its transactions) + WATCH/MGET/PTTL + MULTI/SET/DEL/EXEC (UNWATCH when
# nothing moves), and PING (the client's probe before it starts). WATCH is why it is an
# identity of its own: WATCH is not `denyoom`, every watched name is held until the
# connection ends and Redis 7.0 charges it to neither maxmemory nor maxmemory-clients, so a
# client that may WATCH can grow Redis past its memory limit (docs/attack-surface.md, "What a
# container on the backend network can still do to Redis"). The serving app, which runs all the time
# and faces the network, does not get it; this user's credentials exist only in the rotation
# container's volume, which runs for the length of a pass. SCAN takes no key argument, so the
# key pattern cannot narrow it; with one database (`databases 1`, infra/redis_conf.py) and no
# other user that may write, it only ever sees the app's own prefix.
# tests/integration/test_redis_app_acl.py pins this list to a real pass's traffic too.
ROTATION_COMMANDS: Final = (
    "del", "exec", "mget", "multi", "ping", "pttl", "scan", "set", "strlen", "unwatch", "watch",
)  # fmt: skip
# PING only: enough for a liveness probe, useless to an attacker who steals the credentials.
HEALTHCHECK_COMMANDS: Final = ("ping",)
# The reload job (infra/components/reload.py): re-read the TLS files (CONFIG SET of a TLS option
# reloads certificate, key and CA bundle, redis/redis#8756) and the ACL file (ACL LOAD), and
# nothing else: no key, no channel, not even PING. Redis 7.0 ACLs stop at the subcommand, so
# CONFIG SET cannot be narrowed to the tls-* parameters; enable-protected-configs no still
# refuses dir, dbfilename and the other file-writing settings to it.
RELOAD_COMMANDS: Final = ("config|set", "acl|load")
# The metrics exporter (app/secure_cache/redis_exporter.py, infra/components/exporter.py):
# INFO (Redis 7.0 cannot narrow it to sections: a first-argument grant lets `INFO memory
# server` through) and ACL LOG (which includes ACL LOG RESET, nothing finer exists), no key,
# no channel. And BGREWRITEAOF, which scripts/rotate.sh has it send after a data-key
# rotation (`rewrite-aof`), so that Redis's append-only file keeps no envelope of the
# retired key (docs/day2.md, "What a retirement leaves"): it takes no argument and writes
# only what Redis holds; it is the exporter's because the exporter runs all the time, holds
# no key pattern, and already needs INFO, with which the rewrite is waited for. (The rotation
# pass's identity has the app's keys and WATCH; the reload job's, CONFIG SET: neither is a
# smaller holder.) redis_exporter.py's EXPORTER_COMMANDS spells the same rules for its docs
# and integration fixture; tests/unit/test_redis_acl_and_conf.py pins the two together.
EXPORTER_COMMANDS: Final = ("info", "acl|log", "bgrewriteaof")

# The current password and, while a rotation is under way, the previous one.
MAX_PASSWORDS_PER_USER: Final = 2
_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+:$")
_HASH_RE: Final = re.compile(r"^#[0-9a-f]{64}$")
_COMMAND_RE: Final = re.compile(r"^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)?$")

PasswordHashes = str | Sequence[str]
"""One `#<sha256>` hash, or several while a password rotates (Redis accepts any of them)."""


class AclError(ValueError):
    """Bad input to the ACL renderer."""


@dataclass(frozen=True)
class AclUserRules:
    """One enabled user: an allowlist of commands and the key pattern it may touch (none:
    no key at all)."""

    name: str
    commands: tuple[str, ...]
    key_pattern: str | None = None

    def rules(self, password_hashes: PasswordHashes) -> str:
        """The rule string after `user <name>`: on, its hashes, its keys, its commands."""
        for command in self.commands:
            if not _COMMAND_RE.match(command):
                raise AclError(f"ACL user {self.name}: {command!r} is not a command name")
        keys = f" ~{self.key_pattern}" if self.key_pattern else ""
        allowed = " ".join(f"+{command}" for command in self.commands)
        return f"on {_hash_rules(password_hashes)} resetkeys{keys} resetchannels -@all {allowed}"


RELOAD_RULES: Final = AclUserRules(RELOAD_USER, RELOAD_COMMANDS)
EXPORTER_RULES: Final = AclUserRules(EXPORTER_USER, EXPORTER_COMMANDS)


def users(
    key_prefix: str, *, reload: bool = False, exporter: bool = False, rotation: bool = False
) -> tuple[AclUserRules, ...]:
    """Every enabled user of a stack's Redis, in file order (the reload job's user, the
    exporter's, then the rotation pass's, last)."""
    if not _PREFIX_RE.match(key_prefix):
        raise AclError(
            f"key prefix {key_prefix!r} must be letters, digits, '_', '.' or '-' ending in ':'"
        )
    base = (
        AclUserRules(APP_USER, APP_COMMANDS, key_pattern=f"{key_prefix}*"),
        AclUserRules(HEALTHCHECK_USER, HEALTHCHECK_COMMANDS),
    )
    return (
        *base,
        *((RELOAD_RULES,) if reload else ()),
        *((EXPORTER_RULES,) if exporter else ()),
        *((AclUserRules(ROTATION_USER, ROTATION_COMMANDS, f"{key_prefix}*"),) if rotation else ()),
    )


def password_hash(password: str) -> str:
    """The `#<sha256 hex>` form Redis accepts in ACL rules instead of the cleartext."""
    if not password:
        raise AclError("an ACL user needs a non-empty password")
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def render_acl_file(
    *,
    app_password: str,
    healthcheck_password: str,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    rotation_password: str = "",
) -> str:
    """Render the ACL file: `default` off, `app` on its key prefix, `healthcheck` PING only;
    with `rotation_password`, the rotation pass's user on the same prefix."""
    return render_acl_file_from_hashes(
        app_password_hash=password_hash(app_password),
        healthcheck_password_hash=password_hash(healthcheck_password),
        key_prefix=key_prefix,
        rotation_password_hash=password_hash(rotation_password) if rotation_password else (),
    )


def render_acl_file_from_hashes(
    *,
    app_password_hash: PasswordHashes,
    healthcheck_password_hash: PasswordHashes,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    reload_password_hash: PasswordHashes = (),
    exporter_password_hash: PasswordHashes = (),
    rotation_password_hash: PasswordHashes = (),
) -> str:
    """`render_acl_file` from `password_hash` values, for callers that never see the passwords
    (the Pulumi program keeps them secret; their hashes are not). With `reload_password_hash`,
    the reload job's user is added; with `exporter_password_hash`, the exporter's; with
    `rotation_password_hash`, the rotation pass's."""
    hashes: dict[str, PasswordHashes] = {
        APP_USER: app_password_hash,
        HEALTHCHECK_USER: healthcheck_password_hash,
    }
    if reload_password_hash:
        hashes[RELOAD_USER] = reload_password_hash
    if exporter_password_hash:
        hashes[EXPORTER_USER] = exporter_password_hash
    if rotation_password_hash:
        hashes[ROTATION_USER] = rotation_password_hash
    rules = users(
        key_prefix,
        reload=bool(reload_password_hash),
        exporter=bool(exporter_password_hash),
        rotation=bool(rotation_password_hash),
    )
    return render_users(rules, hashes, key_prefix)


def default_user_line(key_prefix: str) -> str:
    """`default` off, with the writes of the app's transactions on the app's keys.

    `default` is the user unauthenticated connections get; off, they get nothing (they cannot
    run a command or authenticate as it). Redis 7.0 also replays its append-only file as
    `default` and checks every command a MULTI/EXEC queued against its rules (fixed upstream
    after 7.0: redis/redis#14541): with no commands at all, every transaction since the last
    AOF rewrite (the rotation pass's SET of the new entry and DEL of the old) is dropped on a
    restart. So the disabled user keeps exactly SET and DEL on the app's prefix, which only
    that replay can use (tests/integration/test_redis_aof_transactions.py)."""
    return f"user default off resetkeys ~{key_prefix}* resetchannels -@all +set +del"


def render_users(
    rules: Sequence[AclUserRules],
    hashes: Mapping[str, PasswordHashes],
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> str:
    """The ACL file for `rules`, each user with its hashes from `hashes`; `default` off first."""
    lines = [default_user_line(key_prefix)]
    for user in rules:
        if user.name not in hashes:
            raise AclError(f"ACL user {user.name} has no password hash")
        lines.append(f"user {user.name} {user.rules(hashes[user.name])}")
    return "\n".join(lines) + "\n"


def reload_user_line(password_hashes: PasswordHashes) -> str:
    """The reload job's user: RELOAD_COMMANDS only, no keys, no channels."""
    return f"user {RELOAD_USER} {RELOAD_RULES.rules(password_hashes)}"


def _hash_rules(password_hashes: PasswordHashes) -> str:
    """`#h1 #h2`: each hash checked, so nothing but a hash reaches the file."""
    hashes = [password_hashes] if isinstance(password_hashes, str) else list(password_hashes)
    if not hashes or len(hashes) > MAX_PASSWORDS_PER_USER:
        raise AclError(
            f"an ACL user needs 1 to {MAX_PASSWORDS_PER_USER} password hashes, got {len(hashes)}"
        )
    for value in hashes:
        if not _HASH_RE.match(value):
            raise AclError("a password hash must be '#' followed by 64 lowercase hex digits")
    return " ".join(hashes)


__all__ = [
    "APP_COMMANDS",
    "APP_USER",
    "DEFAULT_KEY_PREFIX",
    "EXPORTER_COMMANDS",
    "EXPORTER_RULES",
    "EXPORTER_USER",
    "HEALTHCHECK_COMMANDS",
    "HEALTHCHECK_USER",
    "MAX_PASSWORDS_PER_USER",
    "RELOAD_COMMANDS",
    "RELOAD_RULES",
    "RELOAD_USER",
    "ROTATION_COMMANDS",
    "ROTATION_USER",
    "AclError",
    "AclUserRules",
    "PasswordHashes",
    "password_hash",
    "reload_user_line",
    "render_acl_file",
    "render_acl_file_from_hashes",
    "render_users",
    "users",
]
