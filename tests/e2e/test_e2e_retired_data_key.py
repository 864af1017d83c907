"""No value sealed with a retired data key stays in Redis's files on disk.

`scripts/rotate.sh S data-key` re-seals every entry under the new key and retires the old one;
Redis's append-only file (Redis 7: a base and incremental parts in `appendonlydir`) recorded
every write since its last rewrite, the old envelopes among them, and kept them until Redis
rewrote it of its own accord (past 64 MB). rotate.sh now ends with a rewrite
(`python -m infra.rotation_probe rewrite-aof`), also when the rotation is one step of `all`
or was interrupted and run again. This test writes entries, rotates, then reads every file of
Redis's data directory as bytes (the engine's archive of `/data`, a tar stream: a container's
log would mangle binary, tests/e2e/archives.py) and looks for the retired key's id in two
forms: the 4 bytes an envelope starts with after its version byte, and the hex a stored name
carries (app/secure_cache/crypto.py). As a control, the same search finds the old id before the
rotation and the new id after it, base RDB included (its strings may be LZF-compressed, but
the first bytes of a string are always a literal run).

A `fault` test: it rotates the data key the other tests' entries are sealed with.
"""

from __future__ import annotations

import uuid
from typing import Final

import docker
import pytest

from tests.e2e import appclient
from tests.e2e.archives import archive_files
from tests.e2e.commands import rotated
from tests.e2e.interrupted import data_key_stopped_after_first_up
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.usefixtures("stack_files_restored"),
]

ENTRIES: Final = 40
# Envelope versions a write may have made (app/secure_cache/crypto.py): byte 0, then the id.
VERSIONS: Final = (1, 2, 3)


def _data_files(client: docker.DockerClient, stack: Stack) -> dict[str, bytes]:
    """Every regular file under Redis's /data, by path, as the bytes on disk."""
    return archive_files(client, stack.redis, "/data")


def _holding(key_id: str, files: dict[str, bytes]) -> list[str]:
    """The files that hold an envelope or a stored name of the data key `key_id` (hex)."""
    raw = bytes.fromhex(key_id)
    needles = [bytes((v,)) + raw for v in VERSIONS] + [f":{key_id}:".encode()]
    return sorted(name for name, data in files.items() if any(n in data for n in needles))


def _key_ids(stack: Stack) -> tuple[str, list[str]]:
    encryption = appclient.status(stack)["encryption"]
    return str(encryption["primary_key_id"]), list(encryption["previous_key_ids"])


def _rotate(stack: Stack, kind: str, *, stop_after_first_up: bool) -> str:
    """`scripts/rotate.sh S KIND`; with `stop_after_first_up` (data-key only), stopped once the
    new key's up is done, then run again: it finishes the rotation it finds half done."""
    if stop_after_first_up:
        data_key_stopped_after_first_up(stack)
    return rotated(stack, kind)


@pytest.mark.one_stack(
    "rotate.sh's data-key steps and Redis's persistence settings are the same for every stack "
    "(infra/redis_conf.py); no stack setting changes what the AOF keeps"
)
@pytest.mark.parametrize(
    ("kind", "stop_after_first_up"),
    [
        ("data-key", False),
        ("data-key", True),
        # rotate.sh all runs the same rotate_data_key, rewrite included (its stand-in runs in
        # tests/unit/test_rotate_script_applier_state.py); live, it takes eleven ups.
        pytest.param("all", False, marks=pytest.mark.rotate_all),
    ],
    ids=["data-key", "data-key-interrupted-then-resumed", "all"],
)
def test_retired_data_key__no_envelope_of_it_stays_in_redis_files(
    stack: Stack, docker_client: docker.DockerClient, kind: str, stop_after_first_up: bool
) -> None:
    old, previous = _key_ids(stack)
    assert previous == [], f"a data-key rotation of {stack.name} is half done; finish it first"
    run = uuid.uuid4().hex[:8]
    stored = {f"e2e-aof-{run}-{i}": f"aof-{run}-{i}-".encode() * 20 for i in range(ENTRIES)}
    for key, value in stored.items():
        assert appclient.put(stack, key, value) == 204
    # appendfsync everysec: wait until the writes are in the file, not only in Redis.
    appclient.wait_for(
        "Redis's append-only file to hold the entries just written",
        lambda: _holding(old, _data_files(docker_client, stack)) or None,
    )

    said = _rotate(stack, kind, stop_after_first_up=stop_after_first_up)
    assert "rewrote its append-only file" in said
    appclient.api_token(stack, refresh=True)  # `all` rotates it too
    new, previous = _key_ids(stack)
    assert new != old, "the rotation made a new key"
    assert previous == [], "and retired the old one"
    assert {k: appclient.get(stack, k) for k in stored} == stored

    files = _data_files(docker_client, stack)
    assert _holding(new, files), f"the new key's entries are not found in {sorted(files)}"
    left = _holding(old, files)
    assert left == [], f"the retired data key {old}'s envelopes or names are still in {left}"
