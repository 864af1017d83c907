"""This code as the older one in a rollback: entries a newer secure-cache wrote.

The upgrade pass of 2026-12-02 rolled stack s78 back past envelope version 2: the older code
counted every newer entry as an integrity failure, and its rotation pass deleted all 1888 of
them at exit 0 (docs/day2.md, "Rolling back the app"). Here the newer entry is a version-3 envelope
(tests/support/envelopes.py): a miss counted apart (`newer_envelope`), logged once with what
to do, never deleted by a rotation pass, whose CLI exits 7 and whose script stops there with
the old key kept. Real crypto throughout; no Redis (tests/integration/test_cache_rollback.py
runs the same against a TLS redis-server).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from secure_cache import __main__ as cli
from secure_cache.core import CacheCore, RotationReport
from secure_cache.crypto import VERSION, Keyring
from secure_cache.errors import IntegrityError
from secure_cache.metrics import SecurityEvents
from tests.support.cache_env import CORE_DATA_KEY, FakeClock, core_settings
from tests.support.envelopes import FUTURE_VERSION, future_envelope, with_version

ROOT = Path(__file__).resolve().parents[2]
OLD = bytes(range(50, 82))
LOGICAL = b"user:42"
VALUE = b"secret value 0123456789"


def _core(*previous: bytes) -> CacheCore:
    return CacheCore(core_settings(previous_keys=previous), clock=FakeClock(500.0))


# -- crypto: what counts as a newer writer's entry -------------------------------------------


def test_future_envelope__opens_under_no_key_with_the_one_opaque_error() -> None:
    keyring = Keyring(CORE_DATA_KEY)
    name, envelope = future_envelope(keyring, LOGICAL, VALUE)
    with pytest.raises(IntegrityError) as on_read:
        keyring.open_value(name, LOGICAL, envelope)
    with pytest.raises(IntegrityError) as on_rotation:
        keyring.open(name, envelope)
    assert str(on_read.value) == str(on_rotation.value) == IntegrityError.MESSAGE
    # Yet it is authentic: version 3's open, with this envelope's own header (version 4) in
    # the associated data, gives the value back. Only the version keeps this code out.
    start = 28 + int.from_bytes(envelope[26:28], "big")
    aad = envelope[:start] + len(LOGICAL).to_bytes(2, "big") + LOGICAL + name
    assert keyring.primary.aead.decrypt(envelope[6:18], envelope[start:], aad) == VALUE
    with pytest.raises(IntegrityError):  # and the version byte is authenticated
        keyring.open_value(name, LOGICAL, with_version(envelope, VERSION))


@pytest.mark.parametrize("version", [VERSION + 1, 9, 255])
def test_newer_version__is_the_version_of_a_newer_envelope_of_a_key_it_holds(
    version: int,
) -> None:
    keyring = Keyring(CORE_DATA_KEY, (OLD,))
    name, envelope = future_envelope(keyring, LOGICAL, VALUE, version=version)
    assert keyring.newer_version(name, envelope) == version
    # Of a previous key too: those are what a rotation pass scans.
    old_name, old_envelope = future_envelope(Keyring(OLD), LOGICAL, VALUE, version=version)
    assert keyring.newer_version(old_name, old_envelope) == version


def _not_newer() -> dict[str, tuple[bytes, bytes]]:
    keyring = Keyring(CORE_DATA_KEY)
    name = keyring.primary.name(LOGICAL)
    v2 = keyring.seal(name, LOGICAL, VALUE)
    _, future = future_envelope(keyring, LOGICAL, VALUE)
    _, foreign = future_envelope(Keyring(os.urandom(32)), LOGICAL, VALUE)
    other_name = Keyring(OLD).primary.name(LOGICAL)
    return {
        "tampered-v2": (name, v2[:-1] + bytes((v2[-1] ^ 1,))),
        "v1-byte": (name, with_version(v2, 1)),
        "zero-byte": (name, with_version(v2, 0)),
        "not-an-envelope": (name, b"tampered, not an envelope"),
        "empty": (name, b""),
        "header-only": (name, future[:6]),
        "unknown-key-id": (name, foreign),
        "under-another-keys-name": (other_name, future),
    }


@pytest.mark.parametrize(("name", "envelope"), _not_newer().values(), ids=list(_not_newer()))
def test_newer_version__is_none_for_anything_else(name: bytes, envelope: bytes) -> None:
    keyring = Keyring(CORE_DATA_KEY, (OLD,))
    with pytest.raises(IntegrityError):
        keyring.open(name, envelope)
    assert keyring.newer_version(name, envelope) is None


def test_newer_version__is_asked_only_after_a_failed_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot paths stay as they were: a read that opens never tests the version."""

    def must_not_run(*_: Any) -> int | None:
        raise AssertionError("newer_version on a successful open")

    monkeypatch.setattr(Keyring, "newer_version", must_not_run)
    core = _core()
    name = core.keyring.primary_name(LOGICAL)
    sealed = core.keyring.seal(name, LOGICAL, VALUE)
    assert core.get("user:42")[2](sealed) == VALUE
    assert core.get_many(["user:42"])[2]([sealed]) == {"user:42": VALUE}
    rotating = _core(OLD)
    old_name = Keyring(OLD).primary.name(LOGICAL)
    old_sealed = Keyring(OLD).seal(old_name, LOGICAL, VALUE)
    assert rotating.get("user:42")[2]([None, old_sealed]) == VALUE
    plan = rotating.plan_batch([old_name], [old_sealed], [-1])
    assert plan.sets == 1


# The last secure-cache that wrote envelope version 2 (crypto.py before version 3): what a stack
# rolled back from version 3 runs.
VERSION_2_COMMIT = "47664b616418206594ab3f3b8cec4771af166d9d"
_AS_VERSION_2 = """
import json, sys
from secure_cache import core, crypto
from tests.support.cache_env import CORE_DATA_KEY, core_settings

envelope = bytes.fromhex(sys.argv[1])
reader = core.CacheCore(core_settings())
value = reader.get("user:42")[2](envelope)
settings = core_settings(data_key=bytes(range(7, 39)), previous_keys=(CORE_DATA_KEY,))
rotating = core.CacheCore(settings)
name = crypto.Keyring(CORE_DATA_KEY).primary.name(b"user:42")
plan = rotating.plan_batch([name], [envelope], [60_000])
print(json.dumps({
    "version": crypto.VERSION, "value": value, "commands": len(plan.commands),
    "left_newer": plan.left_newer, "reader": reader.events.snapshot(),
}))
"""


def test_version_2_code__counts_a_version_3_entry_as_newer_and_its_rotation_leaves_it(
    tmp_path: Path,
) -> None:
    """The rollback this version's predecessor was made ready for (docs/day2.md, "Rolling
    back the app"): version-2 code itself, from git, reads an entry this code wrote (with an
    expiry) as `newer_envelope`, not `integrity_failure`, and its rotation pass leaves it."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", VERSION_2_COMMIT, "app"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"no git history with {VERSION_2_COMMIT[:7]} (a shallow clone?)")
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    core = _core()
    name = core.stored_name("user:42")
    stamp = (4_102_444_800_000).to_bytes(8, "big")  # 2100-01-01: version 2 reads no expiry
    envelope = core.keyring.seal(name, LOGICAL, VALUE, stamp)
    result = subprocess.run(
        [sys.executable, "-c", _AS_VERSION_2, envelope.hex()],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": f"{tmp_path / 'app'}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["version"] == 2  # the old code indeed
    assert seen["value"] is None
    assert (seen["reader"]["newer_envelopes"], seen["reader"]["integrity_failures"]) == (1, 0)
    assert (seen["left_newer"], seen["commands"]) == (1, 0)  # left: no SET, no DEL


# -- reads ---------------------------------------------------------------------------------------


def test_get__a_newer_entry_is_a_miss_counted_apart_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = _core()
    _, envelope = future_envelope(core.keyring, LOGICAL, VALUE)
    with caplog.at_level(logging.INFO, logger="secure_cache"):
        assert core.get("user:42")[2](envelope) is None
        assert core.get_many(["user:42", "user:43"])[2]([envelope, None]) == {}
        assert core.get("user:42")[2](envelope) is None
    assert core.events.count("newer_envelopes") == 3
    assert core.events.count("integrity_failures") == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    line, name = lines[0], core.stored_name("user:42").decode()
    assert line.startswith(f"event=newer_envelope key={name} ")
    assert f"version={FUTURE_VERSION} reads_up_to={VERSION} -- " in line
    assert "written by a newer secure-cache" in line
    assert f"reads envelope versions up to {VERSION}" in line
    assert "upgrade the app" in line
    assert "user:42" not in line.replace(name, "")
    assert VALUE.decode() not in caplog.text


def test_get__during_a_rotation_a_newer_entry_of_the_previous_key_is_counted_apart() -> None:
    core = _core(OLD)
    name, envelope = future_envelope(Keyring(OLD), LOGICAL, VALUE)
    assert core.keyring.names(LOGICAL)[1] == name
    assert core.get("user:42")[2]([None, envelope]) is None
    assert core.get_many(["user:42"])[2]([None, envelope]) == {}
    assert core.events.count("newer_envelopes") == 2
    assert core.events.count("integrity_failures") == 0


def test_get__a_one_byte_edit_of_a_current_entry_is_still_an_integrity_failure() -> None:
    """Not every bad version byte is a newer writer's: one below or at this version, or one
    whose key id is not the key of its name, is tampering as before."""
    core = _core()
    name = core.keyring.primary_name(LOGICAL)
    sealed = core.keyring.seal(name, LOGICAL, VALUE)
    for envelope in (with_version(sealed, 1), with_version(sealed, 0), b"\x09" + b"\x00" * 60):
        assert core.get("user:42")[2](envelope) is None
    assert core.events.count("integrity_failures") == 3
    assert core.events.count("newer_envelopes") == 0


def test_security_events__a_once_event_is_counted_every_time_and_logged_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = SecurityEvents()
    with caplog.at_level(logging.INFO, logger="secure_cache"):
        for _ in range(3):
            events.record("newer_envelope", key=b"cache:0a0b0c0d:ff", note="do this")
            events.record("integrity_failure", key=b"cache:0a0b0c0d:ff")
    assert events.count("newer_envelopes") == 3
    assert [r.getMessage() for r in caplog.records].count(
        "event=newer_envelope key=cache:0a0b0c0d:ff -- do this"
    ) == 1
    assert len(caplog.records) == 4  # every integrity failure still has its line


# -- rotation ------------------------------------------------------------------------------------


def test_plan_batch__leaves_a_newer_entry_and_still_discards_garbage() -> None:
    old = Keyring(OLD)
    core = _core(OLD)
    names = [old.primary.name(b"k%d" % i) for i in range(3)]
    raws: list[Any] = [
        old.seal(names[0], b"k0", b"v0"),
        future_envelope(old, b"k1", b"v1")[1],
        b"garbage",
    ]
    plan = core.plan_batch(names, raws, [-1, -1, -1])
    assert [(c[0], c[1]) for c in plan.commands] == [
        (b"SET", core.keyring.primary_name(b"k0")),
        (b"DEL", names[0]),
        (b"DEL", names[2]),
    ]
    assert (plan.sets, plan.discarded, plan.left_newer) == (1, 1, 1)
    assert core.events.count("newer_envelopes") == 1
    assert core.events.count("integrity_failures") == 1
    report = RotationReport()
    core.tally(plan, [b"OK", 1, 1], report)
    assert (report.migrated, report.discarded, report.left_newer) == (1, 1, 1)


def test_rotation_steps__a_batch_of_newer_entries_only_is_left_counted_and_incomplete() -> None:
    old = Keyring(OLD)
    core = _core(OLD)
    name, envelope = future_envelope(old, LOGICAL, VALUE)
    steps = core.rotation(batch_size=10, max_batches=None)
    next(steps)
    steps.send([[b"0", [name]]])
    steps.send([len(envelope)])
    # Nothing to move: no MULTI, no DEL; the watch is released.
    assert steps.send([b"OK", [envelope], 5000]) == [(b"UNWATCH",)]
    count = steps.send([b"OK"])
    assert count[0][0] == b"SCAN"
    with pytest.raises(StopIteration) as done:
        steps.send([[b"0", [name]]])  # it is still there
    report: RotationReport = done.value.value
    assert report.as_dict() == {
        **RotationReport().as_dict(),
        "scanned": 1,
        "batches": 1,
        "left_newer": 1,
        "remaining": 1,
        "complete": False,
    }


# -- the CLI and scripts/rotate.sh ---------------------------------------------------------------


class _Rotating:
    def __init__(self, report: RotationReport) -> None:
        self.report = report

    def rotate(self, **_: Any) -> RotationReport:
        return self.report


def _cli_rotate(report: RotationReport) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(batch_size=None, max_batches=None)
    with redirect_stdout(out), redirect_stderr(err):
        code = cli._rotate(_Rotating(report), args)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def test_cli_rotate__entries_left_for_newer_code_exit_7_with_what_to_do() -> None:
    report = RotationReport(scanned=5, migrated=3, left_newer=2, remaining=2, batches=1)
    code, out, err = _cli_rotate(report)
    assert code == cli.EXIT_NEWER == 7
    assert '"left_newer": 2' in out
    assert "rotation incomplete: 2 entries written by a newer secure-cache" in err
    assert f"above {VERSION}, the newest this version reads" in err
    assert "not deleted" in err
    assert "Keep the old data key" in err
    assert "scripts/rotate.sh STACK data-key" in err
    assert len(err.splitlines()) == 1


def test_cli_rotate__newer_entries_gone_by_the_last_scan_leave_nothing_to_keep() -> None:
    """Complete: the entries left expired or were deleted before the pass ended, so the old
    key owns nothing and may be retired."""
    code, _, err = _cli_rotate(RotationReport(scanned=1, left_newer=1, complete=True))
    assert (code, err) == (cli.EXIT_OK, "")


def test_cli_rotate__deleted_entries_are_no_longer_said_to_be_a_newer_writers() -> None:
    code, _, err = _cli_rotate(RotationReport(scanned=1, discarded=1, complete=True))
    assert code == cli.EXIT_OK
    assert "1 entry no data key opens was deleted" in err
    assert "those are left in place" in err


def test_readme_exit_codes__every_cli_code_has_its_row() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert codes <= rows, codes - rows
    assert re.search(r"^\| 7 \|[^\n]*newer secure-cache", table, re.MULTILINE)


# A `docker` that runs the rotation pass as a rollback leaves it: its line, then exit 7; and a
# `python` for everything else rotate.sh runs (the settings file, the probe, the applier),
# each answering as a stack with nothing unfinished would. Both log their arguments.
FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "docker $*" >>"$FAKE_LOG"
case "$1" in
    info) exit 0 ;;
    start)
        echo "secure-cache: rotation incomplete: 4 entries written by a newer secure-cache" >&2
        exit "$FAKE_PASS_EXIT" ;;
    *) echo "fake docker: unexpected $*" >&2; exit 99 ;;
esac
"""
FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "python $*" >>"$FAKE_LOG"
case "$2 $3" in
    "infra.stack_config get") echo 1 ;;
    "infra.stack_config set") ;;
    # scripts/rotate.sh takes the stack's lock for its whole run (infra/rotation_lock.py):
    # here it is handed over at once, as the real one does once it holds it.
    "infra.rotation_lock "*)
        lock="$4:stand-in"; shift 7; SECURE_REDIS_STACK_LOCK="$lock" exec "$@" ;;
    "infra.rotation_probe snapshot") echo '{}' ;;
    "infra.rotation_probe unfinished" | "infra.rotation_probe guard") ;;
    "infra.rotation_probe wait" | "infra.rotation_probe report") ;;
    "infra.rotation_probe rewrite-aof") exit "${FAKE_REWRITE_EXIT:-0}" ;;
    "infra.apply up") ;;
    "infra.apply plan") echo "apply: plan: 37 unchanged" ;;
    *) echo "fake python: unexpected $*" >&2; exit 99 ;;
esac
"""


def _rotate_sh_data_key(
    tmp_path: Path, pass_exit: int, rewrite_exit: int = 0
) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir, venv = tmp_path / "bin", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    for path, text in ((bin_dir / "docker", FAKE_DOCKER), (venv / "bin" / "python", FAKE_PYTHON)):
        path.write_text(text)
        path.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    result = subprocess.run(
        [str(ROOT / "scripts" / "rotate.sh"), "dev", "data-key"],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "SECURE_REDIS_VENV": str(venv),
            "FAKE_LOG": str(log),
            "FAKE_PASS_EXIT": str(pass_exit),
            "FAKE_REWRITE_EXIT": str(rewrite_exit),
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, log.read_text()


def test_rotate_sh__a_pass_that_left_newer_entries_stops_with_the_old_key_kept(
    tmp_path: Path,
) -> None:
    """Exit 7: no retry (running this version again moves nothing), no retirement of the old
    key (dataKeyKeepPrevious stays), exit 1 with what to do. Every command is a stand-in: no
    Docker engine, Redis or stack file is touched."""
    result, calls = _rotate_sh_data_key(tmp_path, 7)
    assert result.returncode == 1, result.stderr
    assert calls.count("docker start --attach secure-redis-dev-rotation") == 1
    assert "dataKeyKeepPrevious 0" not in calls
    assert "rewrite-aof" not in calls
    assert "rotate: error: the rotation pass left entries written by a newer secure-cache" in (
        result.stderr
    )
    assert "the rotation is NOT complete" in result.stderr
    assert "scripts/rotate.sh dev data-key" in result.stderr
    assert "rotated in place" not in result.stdout


def test_rotate_sh__a_pass_that_finished_retires_the_old_key(tmp_path: Path) -> None:
    """The stand-ins above run the whole flow when the pass exits 0."""
    result, calls = _rotate_sh_data_key(tmp_path, 0)
    assert result.returncode == 0, result.stderr
    assert "dataKeyKeepPrevious 0" in calls
    assert "data-key rotated in place" in result.stdout
    # Last, after the retire and its setting put back: Redis rewrites its append-only file.
    rewrite = calls.index("infra.rotation_probe rewrite-aof --stack dev")
    assert rewrite > calls.rindex("dataKeyKeepPrevious 1")
    assert rewrite > calls.rindex("infra.apply up")


def test_rotate_sh__a_failed_aof_rewrite_fails_the_rotation_naming_what_to_run(
    tmp_path: Path,
) -> None:
    """The old key is retired by then; the failure says the files may still hold its entries
    and how to rewrite and check them again."""
    result, calls = _rotate_sh_data_key(tmp_path, 0, rewrite_exit=1)
    assert result.returncode == 1
    assert "dataKeyKeepPrevious 0" in calls
    assert "Redis's files on disk may still hold entries sealed with it" in result.stderr
    assert "python -m infra.rotation_probe rewrite-aof --stack dev" in result.stderr
    assert "rotated in place" not in result.stdout
