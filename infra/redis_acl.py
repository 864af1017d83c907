"""The Redis ACL file: who may connect and what each user may do.

One definition shared by the Pulumi program and the integration tests, so the tests exercise
exactly the ACL a stack deploys. Passwords appear only as SHA-256 hashes (`#<hex>`, see
https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/), so the rendered
file reveals nothing usable and policies can read it in full.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

APP_USER: Final = "app"
HEALTHCHECK_USER: Final = "healthcheck"
RELOAD_USER: Final = "reload"
DEFAULT_KEY_PREFIX: Final = "cache:"

# The app reads and writes its own prefix and nothing else. Categories are granted, then the
# dangerous and admin ones are taken back, so a future command in @read/@write that Redis
# classes as dangerous stays denied. SCAN (rotation) is @keyspace; KEYS is @dangerous.
APP_COMMANDS: Final = (
    "-@all +@read +@write +@keyspace +@transaction +@connection -@dangerous -@admin"
)
# PING only: enough for a liveness probe, useless to an attacker who steals the credentials.
HEALTHCHECK_COMMANDS: Final = "-@all +ping"
# The reload job (infra/components/reload.py): re-read the TLS files (CONFIG SET of a TLS option
# reloads certificate, key and CA bundle, redis/redis#8756) and the ACL file (ACL LOAD), and
# nothing else: no key, no channel, not even PING. Redis 7.0 ACLs stop at the subcommand, so
# CONFIG SET cannot be narrowed to the tls-* parameters; enable-protected-configs no still
# refuses dir, dbfilename and the other file-writing settings to it.
RELOAD_COMMANDS: Final = "-@all +config|set +acl|load"

# The current password and, while a rotation is under way, the previous one.
MAX_PASSWORDS_PER_USER: Final = 2
_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9_.-]+:$")
_HASH_RE: Final = re.compile(r"^#[0-9a-f]{64}$")


class AclError(ValueError):
    """Bad input to the ACL renderer."""


def password_hash(password: str) -> str:
    """The `#<sha256 hex>` form Redis accepts in ACL rules instead of the cleartext."""
    if not password:
        raise AclError("an ACL user needs a non-empty password")
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def render_acl_file(
    *, app_password: str, healthcheck_password: str, key_prefix: str = DEFAULT_KEY_PREFIX
) -> str:
    """Render the ACL file: `default` off, `app` on its key prefix, `healthcheck` PING only."""
    return render_acl_file_from_hashes(
        app_password_hash=password_hash(app_password),
        healthcheck_password_hash=password_hash(healthcheck_password),
        key_prefix=key_prefix,
    )


PasswordHashes = str | Sequence[str]
"""One `#<sha256>` hash, or several while a password rotates (Redis accepts any of them)."""


def render_acl_file_from_hashes(
    *,
    app_password_hash: PasswordHashes,
    healthcheck_password_hash: PasswordHashes,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    reload_password_hash: PasswordHashes = (),
) -> str:
    """`render_acl_file` from `password_hash` values, for callers that never see the passwords
    (the Pulumi program keeps them secret; their hashes are not). With `reload_password_hash`,
    the reload job's user is added (`reload_user_line`)."""
    app_password_hash = _hash_rules(app_password_hash)
    healthcheck_password_hash = _hash_rules(healthcheck_password_hash)
    if not _PREFIX_RE.match(key_prefix):
        raise AclError(
            f"key prefix {key_prefix!r} must be letters, digits, '_', '.' or '-' ending in ':'"
        )
    lines = [
        # `default` is the user unauthenticated connections get; off means they get nothing.
        "user default off resetkeys resetchannels -@all",
        f"user {APP_USER} on {app_password_hash} resetkeys ~{key_prefix}* "
        f"resetchannels {APP_COMMANDS}",
        f"user {HEALTHCHECK_USER} on {healthcheck_password_hash} resetkeys "
        f"resetchannels {HEALTHCHECK_COMMANDS}",
    ]
    if reload_password_hash:
        lines.append(reload_user_line(reload_password_hash))
    return "\n".join(lines) + "\n"


def reload_user_line(password_hashes: PasswordHashes) -> str:
    """The reload job's user: RELOAD_COMMANDS only, no keys, no channels."""
    return (
        f"user {RELOAD_USER} on {_hash_rules(password_hashes)} resetkeys resetchannels "
        f"{RELOAD_COMMANDS}"
    )


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
    "HEALTHCHECK_COMMANDS",
    "HEALTHCHECK_USER",
    "MAX_PASSWORDS_PER_USER",
    "RELOAD_COMMANDS",
    "RELOAD_USER",
    "AclError",
    "PasswordHashes",
    "password_hash",
    "reload_user_line",
    "render_acl_file",
    "render_acl_file_from_hashes",
]
