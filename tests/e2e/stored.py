"""The opaque names the app's entries have in Redis, found from outside the app.

A name is a keyed hash of the client's key (app/secure_cache/crypto.py), so a test finds the
one its write created by listing the names before and after. Other test files run beside it
on the same stack (scripts/test.sh: two workers), and their writes land in the same listing:
put_and_find therefore writes, deletes and writes again until one name followed all three.
The listing is a SCAN, which only the rotation pass's identity may run (infra/redis_acl.py):
the probe is the `rotation_probe` fixture (tests/e2e/conftest.py).
"""

from __future__ import annotations

import re

from infra.redis_acl import ROTATION_USER
from tests.e2e import appclient
from tests.e2e.probes import ProbeContainer, client_auth, client_files, redis_tls
from tests.e2e.stacks import Stack

_ROUNDS = 5


def stored_names(rotation_probe: ProbeContainer, stack: Stack) -> set[str]:
    """The app's entries' names in Redis (raw keys other tests SET directly as the ACL user,
    `<prefix>e2e-...`, are not the app's)."""
    prefix = stack.settings.key_prefix
    scan = ["SCAN", "0", "MATCH", f"{prefix}*", "COUNT", "100000"]
    commands = [client_auth(ROTATION_USER), scan]
    result = rotation_probe.run(
        "tls", **redis_tls(stack, **client_files(ROTATION_USER), commands=commands)
    )
    listing = result["replies"][1]
    assert listing.startswith("*"), f"SCAN as {ROTATION_USER}: {listing[:200]}"
    names = set(re.findall(rf"\$\d+ ({re.escape(prefix)}\S+)", listing))
    return {n for n in names if not n.startswith(f"{prefix}e2e-")}


def put_and_find(rotation_probe: ProbeContainer, stack: Stack, key: str, value: bytes) -> str:
    """Store `value` under `key` through the app and return the name it has in Redis: the one
    name that appears with each write and goes with each delete (a name another test writes
    at the same moment does not keep that rhythm). The entry is stored when this returns."""
    before = stored_names(rotation_probe, stack)
    assert appclient.put(stack, key, value) == 204
    candidates = stored_names(rotation_probe, stack) - before
    for _ in range(_ROUNDS):
        if len(candidates) == 1:
            break
        assert appclient.delete(stack, key) == 204
        gone = stored_names(rotation_probe, stack)
        assert appclient.put(stack, key, value) == 204
        candidates &= stored_names(rotation_probe, stack) - gone
    assert len(candidates) == 1, f"{len(candidates)} names follow the writes of {key!r}"
    return candidates.pop()
