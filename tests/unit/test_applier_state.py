"""The applier's state file: encrypted, 0600, written atomically, and refused with one clear
line when it is wrongly keyed, tampered, truncated, copied to another stack or unreadable."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import time
from pathlib import Path

import pytest

from infra.applier import state
from infra.applier.state import (
    HEADER_BYTES,
    KEY_FILE_NAME,
    MIN_PASSPHRASE_CHARS,
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    STATE_DIR,
    ResourceState,
    StackState,
    StateError,
    StateStore,
)

# checkov:skip=CKV_SECRET_13: a truncated fake key the state must never show
PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"
# checkov:skip=CKV_SECRET_6: a fake password the state must never show
PASSWORD = "Zq8vW3mK1pLx7tR2nB5cY9dF"


def sample(stack: str = "dev") -> StackState:
    return StackState(
        stack,
        {
            "urn:ca": ResourceState(
                "pulumi-python:dynamic:secure-redis:LeafCertificate",
                "tls-ca",
                "rev1",
                {"commonName": "ca", "validityDays": 90},
                {"keyPem": PEM, "certPem": "cert"},
            ),
            "urn:pw": ResourceState(
                "pulumi-python:dynamic:secure-redis:GeneratedPassword",
                "pw",
                "rev2",
                {"length": 24},
                {"value": PASSWORD},
            ),
        },
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def key_file_store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path, "dev", environ={})


@pytest.fixture
def passphrase_store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "correct horse battery"})


def test_state__round_trips_with_a_key_file_created_0600(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    assert key_file_store.load() is None, "no state yet"
    key_file_store.save(sample())
    loaded = StateStore(tmp_path, "dev", environ={}).load()
    assert loaded == sample()
    directory = tmp_path / STATE_DIR
    assert mode(directory / KEY_FILE_NAME) == 0o600
    assert mode(directory / "dev.state") == 0o600
    assert mode(directory) == 0o700


def test_state__two_stacks_creating_the_key_file_at_once_share_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The e2e session deploys dev and prod side by side: both `up`s find no key file, and the
    one that creates it second must take the first one's key, not replace it (the first
    stack's state would then be sealed with a key that exists nowhere)."""
    real = secrets.token_bytes
    raced: list[bool] = []

    def prod_saves_meanwhile(n: int) -> bytes:
        """dev's key is drawn after dev found no key file: prod's save runs just then."""
        if n == state.KEY_BYTES and not raced:
            raced.append(True)
            StateStore(tmp_path, "prod", environ={}).save(sample("prod"))
        return real(n)

    monkeypatch.setattr(secrets, "token_bytes", prod_saves_meanwhile)
    StateStore(tmp_path, "dev", environ={}).save(sample("dev"))
    assert StateStore(tmp_path, "prod", environ={}).load() == sample("prod")
    assert StateStore(tmp_path, "dev", environ={}).load() == sample("dev")
    assert mode(tmp_path / STATE_DIR / KEY_FILE_NAME) == 0o600
    assert [p.name for p in (tmp_path / STATE_DIR).iterdir() if p.name.endswith(".tmp")] == []


def test_state__round_trips_with_a_passphrase_and_writes_no_key_file(
    passphrase_store: StateStore, tmp_path: Path
) -> None:
    passphrase_store.save(sample())
    again = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "correct horse battery"})
    assert again.load() == sample()
    assert not (tmp_path / STATE_DIR / KEY_FILE_NAME).exists()


@pytest.mark.parametrize("store_kind", ["key file", "passphrase"])
def test_state__no_secret_is_visible_in_the_file(
    store_kind: str, key_file_store: StateStore, passphrase_store: StateStore
) -> None:
    store = key_file_store if store_kind == "key file" else passphrase_store
    store.save(sample())
    blob = store.path.read_bytes()
    for visible in (b"BEGIN", b"PRIVATE KEY", PASSWORD.encode(), b"commonName", b"tls-ca"):
        assert visible not in blob


def test_state__a_wrong_passphrase_is_refused(passphrase_store: StateStore, tmp_path: Path) -> None:
    passphrase_store.save(sample())
    wrong = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "wrong"})
    with pytest.raises(StateError, match="does not decrypt with the passphrase") as raised:
        wrong.load()
    assert "\n" not in str(raised.value)


def test_state__a_replaced_key_file_is_refused(key_file_store: StateStore, tmp_path: Path) -> None:
    key_file_store.save(sample())
    key_file = tmp_path / STATE_DIR / KEY_FILE_NAME
    key_file.write_bytes(bytes(32))
    with pytest.raises(StateError, match="does not decrypt"):
        StateStore(tmp_path, "dev", environ={}).load()


@pytest.mark.parametrize("where", ["mode byte", "salt", "nonce", "ciphertext", "tag"])
def test_state__any_tampered_byte_is_refused(key_file_store: StateStore, where: str) -> None:
    key_file_store.save(sample())
    blob = bytearray(key_file_store.path.read_bytes())
    offset = {
        "mode byte": HEADER_BYTES - 17,
        "salt": HEADER_BYTES - 1,
        "nonce": HEADER_BYTES + 3,
        "ciphertext": HEADER_BYTES + 20,
        "tag": len(blob) - 1,
    }[where]
    blob[offset] ^= 0x01
    key_file_store.path.write_bytes(bytes(blob))
    with pytest.raises(StateError):
        StateStore(key_file_store.path.parents[2], "dev", environ={}).load()


@pytest.mark.parametrize("keep", [0, 5, HEADER_BYTES + 20, -1])
def test_state__a_truncated_file_is_refused(key_file_store: StateStore, keep: int) -> None:
    key_file_store.save(sample())
    blob = key_file_store.path.read_bytes()
    key_file_store.path.write_bytes(blob[:keep])
    with pytest.raises(StateError, match=r"truncated|not a secure-redis state|does not decrypt"):
        key_file_store.load()


def test_state__a_file_copied_to_another_stack_is_refused(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    key_file_store.save(sample())
    prod = StateStore(tmp_path, "prod", environ={})
    prod.path.write_bytes(key_file_store.path.read_bytes())
    with pytest.raises(StateError, match="another stack"):
        prod.load()


def test_state__written_with_the_key_file_read_with_a_passphrase_says_what_to_unset(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    key_file_store.save(sample())
    with pytest.raises(StateError, match=f"unset {PASSPHRASE_ENV}"):
        StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "x"}).load()


def test_state__written_with_a_passphrase_read_without_says_what_to_set(
    passphrase_store: StateStore, tmp_path: Path
) -> None:
    passphrase_store.save(sample())
    with pytest.raises(StateError, match=f"set {PASSPHRASE_ENV}"):
        StateStore(tmp_path, "dev", environ={}).load()


def test_state__a_missing_key_file_is_an_error_not_a_new_key(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    key_file_store.save(sample())
    (tmp_path / STATE_DIR / KEY_FILE_NAME).unlink()
    with pytest.raises(StateError, match=r"key file .* is missing"):
        StateStore(tmp_path, "dev", environ={}).load()
    assert not (tmp_path / STATE_DIR / KEY_FILE_NAME).exists()


def test_state__a_key_file_readable_by_others_is_refused(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    key_file_store.save(sample())
    (tmp_path / STATE_DIR / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(StateError, match="chmod 600"):
        StateStore(tmp_path, "dev", environ={}).load()


def test_state__not_a_state_file_is_refused(key_file_store: StateStore) -> None:
    key_file_store.path.parent.mkdir(parents=True, mode=0o700)
    key_file_store.path.write_text('{"resources": {}}')
    with pytest.raises(StateError, match="not a secure-redis state file"):
        key_file_store.load()


def test_state__saving_again_leaves_no_temporary_file_and_changes_the_nonce(
    key_file_store: StateStore,
) -> None:
    key_file_store.save(sample())
    first = key_file_store.path.read_bytes()
    key_file_store.save(sample())
    second = key_file_store.path.read_bytes()
    assert first != second, "a fresh nonce per write"
    names = sorted(p.name for p in key_file_store.path.parent.iterdir())
    assert names == ["dev.state", KEY_FILE_NAME]


def test_state__a_stale_key_file_temporary_is_removed_a_fresh_one_is_left(
    key_file_store: StateStore,
) -> None:
    """`_create_atomically` killed between its write and its unlink leaves a copy of a key,
    `.state.key.<hex>.tmp` (a second name of the key file once the link was made), which
    outlives a key file removed after a rekey. A save removes such copies once they are old
    enough that no up of another stack (outside this stack's lock) can still be linking one;
    a young one, a symlink and the key file itself are left."""
    key_file_store.save(sample())
    directory, key_file = key_file_store.directory, key_file_store.key_file
    linked = directory / f".{KEY_FILE_NAME}.0123456789ab.tmp"
    os.link(key_file, linked)  # killed after the link: the key file's own key
    unused = directory / f".{KEY_FILE_NAME}.ba9876543210.tmp"
    unused.write_bytes(secrets.token_bytes(32))  # killed before it: a key never used
    fresh = directory / f".{KEY_FILE_NAME}.aaaaaaaaaaaa.tmp"
    fresh.write_bytes(secrets.token_bytes(32))  # another stack's up, linking it now
    planted = directory / f".{KEY_FILE_NAME}.bbbbbbbbbbbb.tmp"
    planted.symlink_to(key_file)
    old = key_file.stat().st_mtime - state.STALE_KEY_TEMPORARY_S - 60
    for leftover in (linked, unused):
        os.utime(leftover, (old, old))
    os.utime(planted, (old, old), follow_symlinks=False)

    key_file_store.save(sample())

    assert not linked.exists()
    assert not unused.exists()
    assert fresh.exists()
    assert planted.is_symlink()
    assert StateStore(key_file_store.directory.parents[1], "dev", environ={}).load() == sample()


def test_state__remove(key_file_store: StateStore) -> None:
    key_file_store.save(sample())
    assert key_file_store.remove() is True
    assert key_file_store.load() is None
    assert key_file_store.remove() is False


def test_state__a_second_up_of_the_same_stack_is_refused_while_one_runs(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    with key_file_store.locked():
        other = StateStore(tmp_path, "dev", environ={})
        busy = pytest.raises(StateError, match="the state of stack dev is locked by a running")
        with busy, other.locked():
            pass
        with StateStore(tmp_path, "prod", environ={}).locked():
            pass  # another stack is independent
    with StateStore(tmp_path, "dev", environ={}).locked():
        pass  # released


# -- the directory the state lives in (attack pass of 2026-12-02) -----------------------------
# The applier made `.secure-redis/state` 0700 but took any directory already there, so one
# that others could write (a careless `chmod -R a+rwX`, a shared group checkout) let another
# local account plant a symlink at `<stack>.lock`, which an `up` run as root then created at
# the symlink's target, anywhere (e.g. /etc/nologin, which locks every other user out); or
# swap the key file and the state for ones of its own, whose passwords and keys the next `up`
# would deploy. Nothing is read or written in such a directory now.


def _no_key_file_made(tmp_path: Path) -> bool:
    return not (tmp_path / STATE_DIR / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    "loose", [0o777, 0o770, 0o755, 0o701], ids=["0777", "0770", "0755", "0701"]
)
def test_state__a_state_directory_open_to_others_is_refused(
    key_file_store: StateStore, tmp_path: Path, loose: int
) -> None:
    directory = tmp_path / STATE_DIR
    directory.mkdir(parents=True)
    directory.chmod(loose)
    refused = rf"state directory {re.escape(str(directory))} .*mode {loose:04o}.*chmod 700"
    with pytest.raises(StateError, match=refused):
        key_file_store.save(sample())
    with pytest.raises(StateError, match="chmod 700"), key_file_store.locked():
        pass
    with pytest.raises(StateError, match="chmod 700"):
        key_file_store.load()
    assert _no_key_file_made(tmp_path)
    assert list(directory.iterdir()) == []


def test_state__a_project_state_parent_others_may_write_is_refused(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    """Whoever may write `.secure-redis` may rename `state` away and put their own there."""
    parent = tmp_path / STATE_DIR.parent
    parent.mkdir()
    parent.chmod(0o777)
    with pytest.raises(StateError, match=rf"{re.escape(str(parent))} .*mode 0777.*chmod go-w"):
        key_file_store.save(sample())
    assert not (tmp_path / STATE_DIR).exists()


def test_state__a_symlinked_state_directory_is_refused(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / STATE_DIR.parent).mkdir()
    (tmp_path / STATE_DIR).symlink_to(elsewhere)
    with pytest.raises(StateError, match="is a symbolic link"):
        key_file_store.save(sample())
    with pytest.raises(StateError, match="is a symbolic link"), key_file_store.locked():
        pass
    assert list(elsewhere.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another uid needs root")
def test_state__a_state_directory_of_another_account_is_refused(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    directory = tmp_path / STATE_DIR
    directory.mkdir(parents=True, mode=0o700)
    os.chown(directory, 70999, 70999)  # no account: the stack uid range (infra/runtime_ids.py)
    with pytest.raises(StateError, match=r"belongs to uid 70999.*chown"):
        key_file_store.save(sample())
    assert list(directory.iterdir()) == []


def test_state__a_symlink_planted_at_the_lock_is_not_followed(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    directory = tmp_path / STATE_DIR
    directory.mkdir(parents=True, mode=0o700)
    target = tmp_path / "nologin"
    (directory / "dev.lock").symlink_to(target)
    with pytest.raises(StateError, match=r"dev\.lock is a symbolic link"), key_file_store.locked():
        pass
    assert not target.exists()


def test_state__the_directory_made_is_0700_and_passes_its_own_check(
    key_file_store: StateStore, tmp_path: Path
) -> None:
    """Positive control: what the applier makes itself is accepted, again and again."""
    key_file_store.save(sample())
    with key_file_store.locked():
        key_file_store.save(sample())
    assert mode(tmp_path / STATE_DIR) == 0o700
    assert StateStore(tmp_path, "dev", environ={}).load() == sample()


# Shorter than the floor (MIN_PASSPHRASE_CHARS), and distinctive enough to find in any output.
SHORT = "hunter2-Qx"
LONG = "a new passphrase of more than sixteen characters 4b1d"


def sealed_before_the_floor(tmp_path: Path, passphrase: str = SHORT) -> StackState:
    """A state sealed with `passphrase` as the applier did before it had a floor."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(state, "MIN_PASSPHRASE_CHARS", 1)
        StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: passphrase}).save(sample())
    return sample()


def test_state__a_new_state_is_not_sealed_with_a_short_passphrase(tmp_path: Path) -> None:
    """Before, `x` sealed every key and password of a stack (attack pass 12)."""
    store = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: SHORT})
    with pytest.raises(StateError) as refused:
        store.save(sample())
    message = str(refused.value)
    assert f"{PASSPHRASE_ENV} is shorter than {MIN_PASSPHRASE_CHARS} characters" in message
    assert f"unset {PASSPHRASE_ENV} to use the key file" in message
    assert SHORT not in message
    assert str(len(SHORT)) not in message
    assert not store.exists()


def test_state__a_passphrase_at_the_floor_seals_a_new_state(tmp_path: Path) -> None:
    at_floor = "p" * MIN_PASSPHRASE_CHARS
    StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: at_floor}).save(sample())
    again = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: at_floor})
    assert again.load() == sample()
    assert again.weak_passphrase() is None


def test_state__a_state_sealed_before_the_floor_opens_with_a_warning_and_saves_again(
    tmp_path: Path,
) -> None:
    """Not locked out: the passphrase is the only key of that state."""
    expected = sealed_before_the_floor(tmp_path)
    store = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: SHORT})
    assert store.load() == expected
    store.save(expected)  # an up of that stack goes on
    warning = store.weak_passphrase()
    assert warning is not None
    assert "python -m infra.apply rekey --stack dev" in warning
    assert NEW_PASSPHRASE_ENV in warning
    assert SHORT not in warning


def test_state__rekey_seals_the_state_with_the_new_passphrase_only(tmp_path: Path) -> None:
    expected = sealed_before_the_floor(tmp_path)
    StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: SHORT}).rekey(LONG)
    renewed = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: LONG})
    assert renewed.load() == expected
    assert renewed.weak_passphrase() is None
    with pytest.raises(StateError, match="does not decrypt"):
        StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: SHORT}).load()


def test_state__rekey_from_the_key_file_to_a_passphrase(key_file_store: StateStore) -> None:
    key_file_store.save(sample())
    key_file_store.rekey(LONG)
    directory = key_file_store.directory.parent.parent
    assert StateStore(directory, "dev", environ={PASSPHRASE_ENV: LONG}).load() == sample()


def test_state__rekey_to_a_short_passphrase_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    sealed_before_the_floor(tmp_path)
    store = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: SHORT})
    before = store.path.read_bytes()
    with pytest.raises(StateError, match=f"{NEW_PASSPHRASE_ENV} is shorter than") as refused:
        store.rekey("also-short")
    assert "also-short" not in str(refused.value)
    assert store.path.read_bytes() == before


def test_busy__names_a_running_holder_without_taking_the_lock(
    key_file_store: StateStore,
) -> None:
    """What scripts/rotate.sh's probe asks before each step (infra/rotation_probe.py
    applier_busy): the holder a running `up` recorded, read without the lock, so an `up`
    starting at that moment is never refused by the look."""
    assert key_file_store.busy("scripts/rotate.sh dev") is None, "no lock file yet"
    with key_file_store.locked("up"):
        said = key_file_store.busy("scripts/rotate.sh dev")
        assert said is not None
        assert f"locked by a running `up` (pid {os.getpid()}" in said
        assert "Run scripts/rotate.sh dev again once that up has finished" in said
    assert key_file_store.busy("scripts/rotate.sh dev") is None, "let go: the record is emptied"


def test_busy__a_record_left_by_a_killed_holder_is_not_a_running_up(
    key_file_store: StateStore,
) -> None:
    with key_file_store.locked("up"):
        pass
    lock = key_file_store.directory / "dev.lock"
    # What an `up` killed with SIGKILL leaves: its record, its pid gone.
    dead = 2**22 + 1  # above pid_max's default ceiling of 2^22: never a running process
    lock.write_text(f'{{"pid": {dead}, "action": "up", "since": "2026-12-03T09:00:00Z"}}')
    assert key_file_store.busy("scripts/rotate.sh dev") is None


def test_busy__a_record_whose_pid_now_runs_another_process_is_not_a_running_up(
    key_file_store: StateStore,
) -> None:
    """The lock file stays after every up, down and rekey (refused ones too: an up refused
    for a host port another process holds left `.secure-redis/state/s83.lock` on s83,
    session 18, 2026-12-03); emptied, it names no one. A holder killed with SIGKILL leaves
    its record, and pids are reused (pid_max 32768 on the build machine): the record then
    named a running process, and every `scripts/rotate.sh` was refused as "locked by a
    running `up`" for as long as that process ran. Only a lock the kernel holds counts."""
    with key_file_store.locked("up"):
        pass
    lock = key_file_store.directory / "dev.lock"
    with subprocess.Popen(["sleep", "60"]) as other:  # runs, and holds no lock
        try:
            lock.write_text(
                f'{{"pid": {other.pid}, "action": "up", "since": "2026-12-03T09:00:00Z"}}'
            )
            assert key_file_store.busy("scripts/rotate.sh dev") is None
            # ... and `up` takes the lock at once, as it did before.
            with key_file_store.locked("up"):
                pass
        finally:
            other.kill()


def test_busy__a_killed_holder_not_yet_reaped_is_not_a_running_up(
    key_file_store: StateStore,
) -> None:
    """An `up` SIGKILLed with the rotate.sh that ran it (its process group) is a zombie until
    its new parent reaps it: its lock is gone with its files, but `kill -0` still finds its
    pid. In the randomized walk (tests/e2e/walk.py seed 5205 on s52, 2026-12-03)
    `scripts/rotate.sh s52 passwords` run again right after the kill was refused, "locked by
    a running `up` (pid 1264 ...)", a pid `ps` no longer showed moments later (whether it was
    still exiting or a zombie then is not known; a zombie is refused no more)."""
    with key_file_store.locked("up"):
        pass
    lock = key_file_store.directory / "dev.lock"
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)  # not waited for: a zombie
    try:
        proc_stat = Path(f"/proc/{pid}/stat")
        for _ in range(1000):  # bounded: a few seconds at most on a loaded machine
            if proc_stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child did not exit")
        lock.write_text(f'{{"pid": {pid}, "action": "up", "since": "2026-12-03T16:18:46Z"}}')
        assert key_file_store.busy("scripts/rotate.sh dev") is None
    finally:
        os.waitpid(pid, 0)
