"""infra/aof_files.py and rotation_probe's rewrite_problems: which files of Redis's data
directory may hold writes older than the last AOF rewrite, and what rotate.sh says then.

Manifests as Debian's redis-server 7.0.15 writes them (before a rewrite; just after one, its
older parts still listed as history; once they are deleted).
"""

from __future__ import annotations

import pytest

from infra.aof_files import ManifestError, base_file, left_behind, manifest_parts
from infra.rotation_probe import ProbeError, Rewritten, rewrite_problems, split_listing

pytestmark = pytest.mark.unit

BEFORE = (
    "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
)
HISTORY = (
    "file appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\n"
    "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
)
AFTER = "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
NEW_FILES = [
    "appendonlydir/appendonly.aof.2.base.rdb",
    "appendonlydir/appendonly.aof.2.incr.aof",
    "appendonlydir/appendonly.aof.manifest",
]
OLD_FILES = ["appendonlydir/appendonly.aof.1.base.rdb", "appendonlydir/appendonly.aof.1.incr.aof"]


def test_after_a_rewrite_only_the_manifest_and_the_parts_it_names_are_kept() -> None:
    assert left_behind(NEW_FILES, AFTER) == []
    assert base_file(BEFORE) == "appendonly.aof.1.base.rdb"
    assert base_file(AFTER) == "appendonly.aof.2.base.rdb"


def test_parts_older_than_the_rewrite_are_left_behind_while_still_on_disk() -> None:
    assert left_behind(NEW_FILES + OLD_FILES, HISTORY) == OLD_FILES
    assert left_behind(NEW_FILES + OLD_FILES, AFTER) == OLD_FILES


def test_files_beside_the_aof_are_left_behind() -> None:
    found = [*NEW_FILES, "dump.rdb", "temp-rewriteaof-bg-42.aof", "appendonlydir/other"]
    assert left_behind(found, AFTER) == [
        "appendonlydir/other",
        "dump.rdb",
        "temp-rewriteaof-bg-42.aof",
    ]


def test_a_quoted_name_is_read_as_redis_writes_it() -> None:
    assert manifest_parts('file "a b.base.rdb" seq 3 type b\n') == {"a b.base.rdb": "b"}


@pytest.mark.parametrize(
    "text",
    ["", "file appendonly.aof.1.incr.aof seq 1 type i\n", "seq 1 type b\n", 'file "open\n'],
    ids=["empty", "no-base", "no-file", "unclosed-quote"],
)
def test_a_manifest_not_as_redis_writes_it_is_refused(text: str) -> None:
    with pytest.raises(ManifestError):
        manifest_parts(text)


def test_the_listing_is_split_and_a_short_one_refused() -> None:
    printed = "\n".join(NEW_FILES) + "\n\0" + AFTER + "\0"
    assert split_listing("r", printed) == (NEW_FILES, AFTER)
    for short in ("", "\n".join(NEW_FILES), "\n".join(NEW_FILES) + "\0" + AFTER):
        with pytest.raises(ProbeError, match="incomplete"):
            split_listing("r", short)


def _seen(**changes: object) -> Rewritten:
    values: dict[str, object] = {
        "said": "rewrite-aof: Redis rewrote its append-only file",
        "failed": False,
        "before": "appendonly.aof.1.base.rdb",
        "after": "appendonly.aof.2.base.rdb",
        "left": [],
    }
    return Rewritten(**{**values, **changes})  # type: ignore[arg-type]


def test_a_rewrite_with_nothing_older_left_is_no_problem() -> None:
    assert rewrite_problems("s9", _seen()) == []


def test_each_problem_says_what_is_wrong_and_what_to_run() -> None:
    again = "python -m infra.rotation_probe rewrite-aof --stack s9 again"
    (failed,) = rewrite_problems("s9", _seen(failed=True, said="NOPERM this user has no perms"))
    assert "NOPERM" in failed
    assert again in failed
    assert "scripts/status.sh s9" in failed
    (same,) = rewrite_problems("s9", _seen(after="appendonly.aof.1.base.rdb"))
    assert "still appendonly.aof.1.base.rdb" in same
    assert again in same
    (left,) = rewrite_problems("s9", _seen(left=["dump.rdb"]))
    assert "dump.rdb" in left
    assert "docker exec secure-redis-s9-redis rm -- /data/NAME" in left
    assert "aof-disable-auto-gc" in left
    assert again in left
