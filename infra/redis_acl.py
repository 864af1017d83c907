"""The Redis ACL file: who may connect and what each user may do.

One definition shared by the Pulumi program and the integration tests, so the tests exercise
exactly the ACL a stack deploys. Passwords appear only as SHA-256 hashes (`#<hex>`, see
https://redis.io/docs/latest/operate/oss_and_stack/management/security/acl/), so the rendered
file reveals nothing usable and policies can read it in full.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

APP_USER: Final = "app"
HEALTHCHECK_USER: Final = "healthcheck"
DEFAULT_KEY_PREFIX: Final = "cache:"

# The app reads and writes its own prefix and nothing else. Categories are granted, then the
# dangerous and admin ones are taken back, so a future command in @read/@write that Redis
# classes as dangerous stays denied. SCAN (rotation) is @keyspace; KEYS is @dangerous.
APP_COMMANDS: Final = (
    "-@all +@read +@write +@keyspace +@transaction +@connection -@dangerous -@admin"
)
# PING only: enough for a liveness probe, useless to an attacker who steals the credentials.
HEALTHCHECK_COMMANDS: Final = "-@all +ping"

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


def render_acl_file_from_hashes(
    *, app_password_hash: str, healthcheck_password_hash: str, key_prefix: str = DEFAULT_KEY_PREFIX
) -> str:
    """`render_acl_file` from `password_hash` values, for callers that never see the passwords
    (the Pulumi program keeps them secret; their hashes are not)."""
    for value in (app_password_hash, healthcheck_password_hash):
        if not _HASH_RE.match(value):
            raise AclError("a password hash must be '#' followed by 64 lowercase hex digits")
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
    return "\n".join(lines) + "\n"


__all__ = [
    "APP_COMMANDS",
    "APP_USER",
    "DEFAULT_KEY_PREFIX",
    "HEALTHCHECK_COMMANDS",
    "HEALTHCHECK_USER",
    "AclError",
    "password_hash",
    "render_acl_file",
    "render_acl_file_from_hashes",
]
