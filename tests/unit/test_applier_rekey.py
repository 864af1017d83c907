"""`python -m infra.apply rekey`: each refusal says which credential is wrong and what to set
(never a passphrase), a lock held by a running up/down/rekey is named with its holder, and
what the old credential still opens after a rekey is removed (the leftover temporary copies)
or reported with the way to remove it (the key file, copies made before)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import apply
from infra.applier.state import (
    KEY_FILE_NAME,
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    STATE_DIR,
    ResourceState,
    StackState,
    StateError,
    StateStore,
)

OLD = "the current state passphrase 4f1a"
NEW = "the new state passphrase 9b2c7e"
OTHER = "not the passphrase at all 3d8e"
PASSPHRASES = (OLD, NEW, OTHER)


def sample(stack: str = "dev") -> StackState:
    resource = ResourceState("t", "n", "i", {}, {"value": "Zq8vW3mK1pLx7tR2"})
    return StackState(stack, {"urn:pw": resource})


def _sealed(project: Path, environ: dict[str, str], stack: str = "dev") -> StateStore:
    store = StateStore(project, stack, environ=environ)
    store.save(sample(stack))
    return store


def _refused(project: Path, environ: dict[str, str], new: str) -> str:
    """rekey's refusal, having checked that it changed nothing and shows no passphrase."""
    store = StateStore(project, "dev", environ=environ)
    before = store.path.read_bytes() if store.exists() else None
    with pytest.raises(StateError) as refused:
        store.rekey(new)
    assert (store.path.read_bytes() if store.exists() else None) == before
    message = str(refused.value)
    assert not [p for p in PASSPHRASES if p in message]
    assert "nothing was changed" in message
    return message


def _replace_key_file(project: Path) -> None:
    key_file = project / STATE_DIR / KEY_FILE_NAME
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)


# (what is wrong, how the state is sealed, the environment, the new passphrase, the line's gist)
CASES = [
    (
        "wrong current passphrase",
        {PASSPHRASE_ENV: OLD},
        {PASSPHRASE_ENV: OTHER},
        NEW,
        f"the passphrase in {PASSPHRASE_ENV} is not the one the state of stack dev",
    ),
    (
        "current passphrase not set",
        {PASSPHRASE_ENV: OLD},
        {},
        NEW,
        f"sealed with a passphrase, and {PASSPHRASE_ENV} is not set",
    ),
    (
        "rekeyed already, old one still set",
        {PASSPHRASE_ENV: NEW},
        {PASSPHRASE_ENV: OLD},
        NEW,
        f"sealed with the passphrase in {NEW_PASSPHRASE_ENV} already (an earlier rekey took)",
    ),
    (
        "rekeyed already, none set",
        {PASSPHRASE_ENV: NEW},
        {},
        NEW,
        f"sealed with the passphrase in {NEW_PASSPHRASE_ENV} already (an earlier rekey took)",
    ),
    (
        "new passphrase is the current one",
        {PASSPHRASE_ENV: OLD},
        {PASSPHRASE_ENV: OLD},
        OLD,
        f"{NEW_PASSPHRASE_ENV} holds the passphrase the state of stack dev is sealed with already",
    ),
    (
        "key-file state, passphrase set",
        {},
        {PASSPHRASE_ENV: OLD},
        NEW,
        f"/{KEY_FILE_NAME}, not a passphrase, and {PASSPHRASE_ENV} is set",
    ),
    ("new passphrase too short", {}, {}, "short", f"{NEW_PASSPHRASE_ENV} is shorter than 16"),
    ("no state", None, {}, NEW, "stack dev has no state at"),
]


@pytest.mark.parametrize(("sealed_with", "environ", "new", "gist"), [c[1:] for c in CASES])
def test_rekey__each_refusal_says_what_is_wrong_and_changes_nothing(
    tmp_path: Path,
    sealed_with: dict[str, str] | None,
    environ: dict[str, str],
    new: str,
    gist: str,
) -> None:
    if sealed_with is not None:
        _sealed(tmp_path, sealed_with)
    assert gist in _refused(tmp_path, environ, new)


def test_rekey__the_refusals_are_all_different(tmp_path: Path) -> None:
    """Before, a wrong current passphrase and an earlier rekey both said `does not decrypt
    ... nothing was deployed`, and a key-file state with a passphrase set `was encrypted
    differently`."""
    lines = set()
    for number, (_, sealed_with, environ, new, _gist) in enumerate(CASES):
        project = tmp_path / str(number)
        if sealed_with is not None:
            _sealed(project, sealed_with)
        lines.add(_refused(project, environ, new).replace(str(project), "P"))
    assert len(lines) == len({case[4] for case in CASES})  # one line per situation


def test_rekey__a_key_file_that_is_not_the_states_is_named(tmp_path: Path) -> None:
    _sealed(tmp_path, {})
    _replace_key_file(tmp_path)
    message = _refused(tmp_path, {}, NEW)
    assert f"the key file {tmp_path / STATE_DIR / KEY_FILE_NAME} does not open" in message
    assert "Put back the key file the state was sealed with" in message


def test_rekey__the_refusal_tells_the_command_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    _sealed(tmp_path, {PASSPHRASE_ENV: OLD})
    monkeypatch.setenv(PASSPHRASE_ENV, OTHER)
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, NEW)
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"apply: error: the passphrase in {PASSPHRASE_ENV} is not the one" in err
    assert "nothing was deployed" not in err
    assert not [p for p in PASSPHRASES if p in out + err]


# -- the lock -------------------------------------------------------------------------------


def test_rekey__a_lock_held_by_a_running_up_names_it_and_the_way_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the stack's lock as an up does (StateStore.locked("up")):
    the rekey's line names that up, its pid and how to see and stop it. It said "another up
    or down ... is running; wait for it to finish"."""
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    _sealed(tmp_path, {PASSPHRASE_ENV: OLD})
    holder = (
        "import sys\n"
        "from pathlib import Path\n"
        "from infra.applier.state import StateStore\n"
        "with StateStore(Path(sys.argv[1]), 'dev', environ={}).locked('up'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    up = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        assert up.stdout.readline().strip() == "held"
        monkeypatch.setenv(PASSPHRASE_ENV, OLD)
        monkeypatch.setenv(NEW_PASSPHRASE_ENV, NEW)
        before = StateStore(tmp_path, "dev").path.read_bytes()
        assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(tmp_path)]) == 2
    finally:
        assert up.stdin is not None
        up.stdin.close()  # it lets go and exits
        up.wait(timeout=60)
    out, err = capsys.readouterr()
    assert f"locked by a running `up` (pid {up.pid}, since " in err
    assert f"`ps -o pid,etime,args -p {up.pid}` shows it" in err
    assert "nothing was changed. Run rekey again once that up has finished" in err
    assert f"(`kill {up.pid}`)" in err
    assert "Do not remove dev.lock" in err
    assert not [p for p in PASSPHRASES if p in out + err]
    assert StateStore(tmp_path, "dev").path.read_bytes() == before
    # Let go, the lock names no one: the next refusal cannot name a process that is gone.
    assert (tmp_path / STATE_DIR / "dev.lock").read_bytes() == b""


def test_rekey__a_lock_held_without_a_record_says_how_to_find_the_holder(tmp_path: Path) -> None:
    """An applier from before the record (or one between its lock and its record)."""
    store = _sealed(tmp_path, {PASSPHRASE_ENV: OLD})
    lock = store.directory / "dev.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateError) as refused, store.locked("rekey"):
            pass
    finally:
        os.close(fd)
    message = str(refused.value)
    assert "locked by another process (it recorded no holder" in message
    assert f"`fuser -v {lock}` shows it" in message
    assert "Run rekey again once it has finished" in message


def test_rekey__the_holder_records_itself_and_clears_the_record(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "dev", environ={})
    with store.locked("rekey"):
        record = json.loads((store.directory / "dev.lock").read_text())
        assert (record["pid"], record["action"]) == (os.getpid(), "rekey")
    assert (store.directory / "dev.lock").read_bytes() == b""


# -- what the old credential still opens -----------------------------------------------------


def test_rekey__removes_the_copies_an_interrupted_write_left_and_reports_the_key_file(
    tmp_path: Path,
) -> None:
    """A write killed between its temporary file and the rename (SIGKILL, a power cut) leaves
    a sealed copy that the key file opens after a rekey from it; the rekey removes it. The
    key file, which also seals prod's state, is kept and reported."""
    store = _sealed(tmp_path, {})
    _sealed(tmp_path, {}, stack="prod")
    leftover = store.directory / ".dev.state.0123456789ab.tmp"
    leftover.write_bytes(store.path.read_bytes())
    other_stacks = store.directory / ".prod.state.0123456789ab.tmp"
    other_stacks.write_bytes(b"prod's, not this rekey's")
    assert StateStore(tmp_path, "dev", environ={}).load() == sample()

    done = StateStore(tmp_path, "dev", environ={}).rekey(NEW)

    assert done.removed == [leftover]
    assert not leftover.exists()
    assert other_stacks.exists()
    assert done.key_file == store.key_file
    assert done.key_file_sealing == ["prod"]
    assert StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: NEW}).load() == sample()


def test_rekey__from_the_key_file__says_what_still_opens_with_it_and_how_to_remove_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    store = _sealed(tmp_path, {})
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, NEW)
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert f"still open with the key file {store.key_file}" in out
    assert "`scripts/rotate.sh dev all`" in out
    assert "now seals no state here and opens only such older copies: remove it (`rm " in out
    assert not [p for p in PASSPHRASES if p in out + err]
    assert store.key_file.exists(), "kept: copies the user may need still open with it"

    shared = tmp_path / "shared"  # the key file seals prod's state too
    (shared / "Pulumi.dev.yaml").parent.mkdir()
    (shared / "Pulumi.dev.yaml").write_text("config: {}\n")
    _sealed(shared, {})
    _sealed(shared, {}, stack="prod")
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(shared)]) == 0
    out = capsys.readouterr().out
    assert f"{shared / STATE_DIR / KEY_FILE_NAME} still seals the state of stack(s) prod" in out
    assert "rm " not in out


def test_rekey__from_a_passphrase__says_copies_still_open_with_the_old_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    _sealed(tmp_path, {PASSPHRASE_ENV: OLD})
    monkeypatch.setenv(PASSPHRASE_ENV, OLD)
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, NEW)
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "still open with the old passphrase" in out
    assert "key file" not in out
    assert not [p for p in PASSPHRASES if p in out + err]
