"""The local applier's state: what the last `up` applied to a stack, encrypted at rest.

Like the Pulumi engine's checkpoint, the state holds every resource's inputs and outputs, and
so private keys, passwords and data keys. It lives in `<project>/.secure-redis/state/` (the
directory is git-ignored, created 0700, and refused when it is not a directory of this account
or root that only its owner may enter, or `.secure-redis` is writable by others), one file per
stack, `<stack>.state`, mode 0600, replaced atomically (temporary file, fsync, rename, fsync of
the directory).

Encryption: AES-256-GCM (`cryptography`), a fresh 96-bit nonce per write, and the file's
header plus the stack name as associated data, so a file copied to another stack's name, or
edited in any byte, does not decrypt. The 256-bit key comes from, in this order:

- `SECURE_REDIS_STATE_PASSPHRASE` (like Pulumi's `PULUMI_CONFIG_PASSPHRASE`): scrypt
  (n=2^15, r=8, p=1, a random 16-byte salt kept in the file's header);
- otherwise a random key file, `.secure-redis/state/state.key`, created 0600 on first use.
  It keeps the state unreadable to whoever gets the state file alone (a backup, a copied
  directory listing), not to whoever can read the key file: use the passphrase for more.

The header records which of the two encrypted the file; reading it with the other one is an
error that says what to set. Every fault is a `StateError` with a one-line message naming the
file and the fix, and never a value from the state.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from infra.applier.deployed import container_record

PASSPHRASE_ENV: Final = "SECURE_REDIS_STATE_PASSPHRASE"  # noqa: S105 - a variable name
# How a run holding the stack's lock for several commands (`StateStore.hold`: a whole
# scripts/rotate.sh) hands it to the commands it starts: `<stack>:<fd>`, the lock file's
# descriptor, which they inherit (`StateStore.held`).
HELD_LOCK_ENV: Final = "SECURE_REDIS_STACK_LOCK"
# Where `python -m infra.apply rekey` takes the passphrase the state is sealed with from then on.
NEW_PASSPHRASE_ENV: Final = "SECURE_REDIS_STATE_NEW_PASSPHRASE"  # noqa: S105 - a variable name
# The shortest passphrase a state is newly sealed with. The state holds every private key,
# password and data key of the stack, and whoever has a copy of the file can guess offline,
# paying only scrypt's cost per guess (SCRYPT_N below: about 0.1 s and 32 MiB on one core,
# far less per guess on many cores or a GPU). 16 random lowercase letters are 75 bits, out of
# reach even at a million guesses a second; 8 (37 bits) fall in about two days at that rate.
# A state sealed before this floor with a shorter one still opens (a refusal would lock its
# stack out: the passphrase is the only key): `weak_passphrase` says so and how to re-seal.
MIN_PASSPHRASE_CHARS: Final = 16
STATE_DIR: Final = Path(".secure-redis") / "state"
KEY_FILE_NAME: Final = "state.key"
FORMAT_VERSION: Final = 1

MAGIC: Final = b"SRSTATE1"
MODE_PASSPHRASE: Final = b"P"
MODE_KEY_FILE: Final = b"K"
SALT_BYTES: Final = 16
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32
TAG_BYTES: Final = 16
HEADER_BYTES: Final = len(MAGIC) + 1 + SALT_BYTES
# scrypt's interactive-login parameters (RFC 7914 §2 discusses them): about 0.1 s and 32 MiB.
SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
# How old a leftover temporary copy of the key file (`.state.key.*.tmp`, from a
# _create_atomically killed between its write and its unlink) must be before save() removes
# it. The key file is shared by every stack of the directory and is made outside any one
# stack's lock, so another stack's up may be between its write and its link right now; that
# takes a write, an fsync and a link (milliseconds, seconds on a loaded disk), far below this.
STALE_KEY_TEMPORARY_S: Final = 3600.0


class StateError(RuntimeError):
    """The state cannot be read or written; the message says which file and what to do."""


@dataclass(frozen=True)
class ResourceState:
    """One resource as last applied. Docker objects: `id` is the engine's ID (a volume's is
    its name), `inputs` the declared properties, `outputs` e.g. the built image ID."""

    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "id": self.id,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceState:
        return cls(
            type=str(data["type"]),
            name=str(data["name"]),
            id=str(data["id"]),
            inputs=dict(data["inputs"]),
            outputs=dict(data["outputs"]),
        )


@dataclass
class StackState:
    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)
    """By URN."""

    def to_bytes(self) -> bytes:
        document = {
            "version": FORMAT_VERSION,
            "stack": self.stack,
            "resources": {urn: r.to_json() for urn, r in sorted(self.resources.items())},
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, stack: str, data: bytes, where: Path) -> StackState:
        try:
            document = json.loads(data)
            if document.get("version") != FORMAT_VERSION or document.get("stack") != stack:
                raise ValueError("version or stack")
            resources = {
                str(urn): ResourceState.from_json(r) for urn, r in document["resources"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StateError(
                f"state file {where} decrypted but is not a version-{FORMAT_VERSION} state of "
                f"stack {stack}; restore it from a backup or remove the stack (down) and its state"
            ) from None
        return cls(stack=stack, resources=resources)


def recorded_image(state: StackState | None, container: str) -> str | None:
    """The image ID the state records for the container named `container` (what the applier
    ran it from), or None: not recorded, or left unfinished by an interrupted up. Here, not in
    infra/apply.py, so that infra/rotation_probe.py reads it without loading the applier."""
    resource = container_record(state, container)
    image = resource.outputs.get("imageId") if resource else None
    return str(image) if image else None


def recorded_container(state: StackState | None, container: str) -> str | None:
    """The ID of the container the state records under the name `container` (the one the
    applier made last: an up that replaces it records its successor's), or None: not
    recorded, or left unfinished by an interrupted up (as `recorded_image`: such a record
    has no image, and infra/rotation_probe.py refuses it on that ground alone)."""
    resource = container_record(state, container)
    if resource is None or not resource.outputs.get("imageId"):
        return None
    return resource.id or None


@dataclass(frozen=True)
class Rekeyed:
    """What `StateStore.rekey` did, for its report."""

    state: StackState
    key_file: Path | None
    """The key file the state was sealed with before, when it was (else None)."""
    removed: list[Path]
    """Leftover temporary copies of the state removed (`_remove_leftover_copies`)."""
    key_file_sealing: list[str]
    """The stacks whose state the key file still seals (only when `key_file` is set)."""


def seal(plaintext: bytes, *, stack: str, mode: bytes, salt: bytes, key: bytes) -> bytes:
    """header | nonce | AES-256-GCM(plaintext), the header and stack name authenticated."""
    header = MAGIC + mode + salt
    nonce = secrets.token_bytes(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(header, stack))


def parse_header(blob: bytes, where: Path) -> tuple[bytes, bytes]:
    """(mode, salt) of a sealed file, or a StateError for anything that is not one."""
    if not blob.startswith(MAGIC):
        raise StateError(
            f"state file {where} is not a secure-redis state file (corrupt or replaced); "
            "restore it from a backup, or remove the stack (down) and the file"
        )
    if len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
        raise StateError(f"state file {where} is truncated; restore it from a backup")
    mode = blob[len(MAGIC) : len(MAGIC) + 1]
    if mode not in (MODE_PASSPHRASE, MODE_KEY_FILE):
        raise StateError(f"state file {where} has an unknown key mode; it is corrupt")
    return mode, blob[len(MAGIC) + 1 : HEADER_BYTES]


def open_sealed(blob: bytes, *, stack: str, key: bytes, where: Path, key_source: str) -> bytes:
    plaintext = _decrypted(blob, stack, key)
    if plaintext is None:
        raise StateError(
            f"state file {where} does not decrypt with {key_source}: the key is wrong, or the "
            f"file was modified, truncated or belongs to another stack; nothing was deployed"
        )
    return plaintext


def _decrypted(blob: bytes, stack: str, key: bytes) -> bytes | None:
    """The plaintext of a sealed `blob`, or None when `key` does not open it."""
    header, rest = blob[:HEADER_BYTES], blob[HEADER_BYTES:]
    try:
        return AESGCM(key).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], _aad(header, stack))
    except InvalidTag:
        return None


def _require_floor(passphrase: str, variable: str, what: str) -> None:
    """A StateError when `passphrase` (from `variable`) is below MIN_PASSPHRASE_CHARS; the
    message names the variable and the floor, never the passphrase or its length."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        key_file = variable == PASSPHRASE_ENV
        other = f", or unset {PASSPHRASE_ENV} to use the key file" if key_file else ""
        raise StateError(
            f"{variable} is shorter than {MIN_PASSPHRASE_CHARS} characters, and {what} only "
            f"with a passphrase of at least {MIN_PASSPHRASE_CHARS} (the state holds every key "
            "and password of the stack; `openssl rand -base64 24` makes one); nothing was "
            f"changed. Set a longer one{other}"
        )


def derive_key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    # The passphrase's bytes as the environment holds them: one that is not UTF-8 (typed in
    # a Latin-1 terminal) comes as surrogates, and a plain encode() raised UnicodeEncodeError,
    # which ended `up` as "an error the applier does not handle". UTF-8 text is unchanged.
    return kdf.derive(passphrase.encode("utf-8", "surrogateescape"))


def _aad(header: bytes, stack: str) -> bytes:
    return header + b"\0" + stack.encode()


class StateStore:
    """`<project>/.secure-redis/state/<stack>.state` and its key."""

    def __init__(
        self, project_dir: Path, stack: str, environ: Mapping[str, str] | None = None
    ) -> None:
        self.stack = stack
        self.directory = project_dir / STATE_DIR
        self.path = self.directory / f"{stack}.state"
        self.key_file = self.directory / KEY_FILE_NAME
        env = os.environ if environ is None else environ
        self._passphrase = env.get(PASSPHRASE_ENV) or None
        self._handed = env.get(HELD_LOCK_ENV, "")
        self._key: tuple[bytes, bytes, bytes] | None = None  # (mode, salt, key), once derived

    @property
    def mode(self) -> bytes:
        return MODE_PASSPHRASE if self._passphrase else MODE_KEY_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> StackState | None:
        """The stack's state, or None when it has none yet."""
        if self.directory.parent.exists():
            self._check_directories()
        try:
            blob = _read_regular(self.path, "state file")
        except FileNotFoundError:
            return None
        mode, salt = parse_header(blob, self.path)
        if mode != self.mode:
            wanted = (
                f"set {PASSPHRASE_ENV} to its passphrase"
                if mode == MODE_PASSPHRASE
                else f"unset {PASSPHRASE_ENV} (it was encrypted with the key file {self.key_file})"
            )
            raise StateError(f"state file {self.path} was encrypted differently: {wanted}")
        key = self._key_for(mode, salt, creating=False)
        plaintext = open_sealed(
            blob, stack=self.stack, key=key, where=self.path, key_source=self._source()
        )
        return StackState.from_bytes(self.stack, plaintext, self.path)

    def weak_passphrase(self) -> str | None:
        """A warning when the passphrase in use is shorter than MIN_PASSPHRASE_CHARS (a state
        sealed before the floor: it is opened, never refused), naming the way to re-seal it;
        else None. The passphrase itself is never part of it."""
        if self._passphrase is None or len(self._passphrase) >= MIN_PASSPHRASE_CHARS:
            return None
        return (
            f"warning: the state of stack {self.stack} is sealed with a {PASSPHRASE_ENV} "
            f"shorter than {MIN_PASSPHRASE_CHARS} characters, which a copy of {self.path} "
            f"can be guessed from offline; re-seal it: put a passphrase of at least "
            f"{MIN_PASSPHRASE_CHARS} characters in {NEW_PASSPHRASE_ENV} (e.g. `read -rs "
            f"{NEW_PASSPHRASE_ENV}; export {NEW_PASSPHRASE_ENV}`), run `python -m infra.apply "
            f"rekey --stack {self.stack}` with the old one still in {PASSPHRASE_ENV}, then "
            f"use the new one in {PASSPHRASE_ENV}"
        )

    def rekey(self, new_passphrase: str) -> Rekeyed:
        """Seal the stack's state again with `new_passphrase` (a fresh salt), having opened it
        with the passphrase or key file in use; the file is replaced atomically, so it is
        sealed with the one or the other, never neither. Then the copies of it that an
        interrupted write left are removed (`_leftover_copies`). Run under `locked()`. Every
        refusal says which credential is wrong and what to set, never a passphrase."""
        _require_floor(new_passphrase, NEW_PASSPHRASE_ENV, "a state is sealed again")
        if self.directory.parent.exists():
            self._check_directories()
        try:
            blob = _read_regular(self.path, "state file")
        except FileNotFoundError:
            raise StateError(
                f"stack {self.stack} has no state at {self.path}: nothing to re-seal, nothing "
                "was changed (a stack deployed from another checkout keeps its state there: "
                "run rekey there, or pass its directory with --project-dir)"
            ) from None
        mode, salt = parse_header(blob, self.path)
        plaintext = self._open_to_rekey(blob, mode, salt, new_passphrase)
        state = StackState.from_bytes(self.stack, plaintext, self.path)
        if mode == MODE_PASSPHRASE and self._passphrase == new_passphrase:
            raise StateError(
                f"{NEW_PASSPHRASE_ENV} holds the passphrase the state of stack {self.stack} is "
                f"sealed with already (the one in {PASSPHRASE_ENV}): nothing to re-seal, "
                f"nothing was changed. Put the new passphrase in {NEW_PASSPHRASE_ENV}"
            )
        was = self.key_file if mode == MODE_KEY_FILE else None
        self._passphrase, self._key = new_passphrase, None
        self.save(state)
        return Rekeyed(
            state=state,
            key_file=was,
            removed=self._remove_leftover_copies(),
            key_file_sealing=self._sealed_with_key_file() if was else [],
        )

    def _open_to_rekey(self, blob: bytes, mode: bytes, salt: bytes, new: str) -> bytes:
        """The plaintext of `blob`, or a StateError naming the credential that is wrong and
        the one to set. A state that opens with the new passphrase alone was re-sealed by an
        earlier rekey: said so, rather than "wrong passphrase"."""
        stack, where = self.stack, self.path
        nothing = "nothing was changed"
        if mode == MODE_KEY_FILE and self._passphrase is not None:
            raise StateError(
                f"the state of stack {stack} ({where}) is sealed with the key file "
                f"{self.key_file}, not a passphrase, and {PASSPHRASE_ENV} is set: rekey opens "
                f"it with the key file only when {PASSPHRASE_ENV} is unset (`env -u "
                f"{PASSPHRASE_ENV} python -m infra.apply rekey --stack {stack}`; the new "
                f"passphrase stays in {NEW_PASSPHRASE_ENV}); {nothing}"
            )
        if mode == MODE_KEY_FILE:
            key = self._key_file_key(creating=False)
            if (plaintext := _decrypted(blob, stack, key)) is not None:
                return plaintext
            raise StateError(
                f"the key file {self.key_file} does not open the state of stack {stack} "
                f"({where}): it is not the key file the state was sealed with (one from another "
                f"checkout, or made anew), or the state file was modified; {nothing}. Put back "
                "the key file the state was sealed with, then run rekey again"
            )
        if self._passphrase is not None:
            current = derive_key(self._passphrase, salt)
            if (plaintext := _decrypted(blob, stack, current)) is not None:
                return plaintext
        if _decrypted(blob, stack, derive_key(new, salt)) is not None:
            raise StateError(
                f"the state of stack {stack} ({where}) is sealed with the passphrase in "
                f"{NEW_PASSPHRASE_ENV} already (an earlier rekey took): nothing to re-seal, "
                f"{nothing}. Put that passphrase in {PASSPHRASE_ENV} from now on"
            )
        if self._passphrase is None:
            raise StateError(
                f"the state of stack {stack} ({where}) is sealed with a passphrase, and "
                f"{PASSPHRASE_ENV} is not set: rekey opens the state with its current "
                f"passphrase in {PASSPHRASE_ENV} and seals it with the new one in "
                f"{NEW_PASSPHRASE_ENV}; {nothing}. Set {PASSPHRASE_ENV} to the current one "
                f"(`read -rs {PASSPHRASE_ENV}; export {PASSPHRASE_ENV}`) and run rekey again"
            )
        raise StateError(
            f"the passphrase in {PASSPHRASE_ENV} is not the one the state of stack {stack} "
            f"({where}) is sealed with, nor is the one in {NEW_PASSPHRASE_ENV}; {nothing}. "
            f"Set {PASSPHRASE_ENV} to the passphrase `up` and `status` use for this stack "
            "(the current one) and run rekey again; if no passphrase you have opens it, the "
            "file was modified or replaced: restore it from a copy"
        )

    def _remove_leftover_copies(self) -> list[Path]:
        """Remove the temporary files `_write_atomically` left for this stack's state (a
        process killed between their write and the rename: SIGKILL, a power cut), and return
        them. Each is a sealed copy of the state, under whatever credential sealed it then,
        so after a rekey it is a copy the old credential opens. Nothing is lost: the applier
        never reads them, and the one `up` saves before its first change (infra/apply.py) is
        renamed before the engine is touched, so no material only such a copy holds is in
        use. Only under `locked()`: no other run of this stack is writing one then."""
        return _remove_temporaries(self.path)

    def _sealed_with_key_file(self) -> list[str]:
        """The stacks whose state in this directory is sealed with the key file (the header,
        which is not encrypted, says; nothing is decrypted)."""
        stacks = []
        for other in sorted(self.directory.glob("*.state")):
            try:
                with other.open("rb") as f:
                    header = f.read(len(MAGIC) + 1)
            except OSError:
                continue
            if header == MAGIC + MODE_KEY_FILE:
                stacks.append(other.name.removesuffix(".state"))
        return stacks

    def save(self, state: StackState) -> None:
        self._ensure_directory()
        _remove_stale_key_temporaries(self.key_file)
        if self._key is None:
            if self._passphrase is not None:  # a new seal: the floor (MIN_PASSPHRASE_CHARS)
                _require_floor(self._passphrase, PASSPHRASE_ENV, "a new state is sealed")
            salt = secrets.token_bytes(SALT_BYTES)
            self._key_for(self.mode, salt, creating=True)
        assert self._key is not None
        mode, salt, key = self._key
        blob = seal(state.to_bytes(), stack=self.stack, mode=mode, salt=salt, key=key)
        _write_atomically(self.path, blob)

    @contextmanager
    def locked(self, action: str = "up") -> Iterator[None]:
        """One `up`, `down` or `rekey` (`action`) of a stack at a time (like the Pulumi
        backends' update lock): an exclusive lock on `<stack>.lock`, refused at once when
        another process holds it. The holder writes its pid, action and start into the file
        (no secret), so the refusal can name it; it empties the file when it lets go. Under a
        lock handed down by the run that started this process (`hold`: scripts/rotate.sh and
        the ups it runs) nothing is taken, and the run's record stays."""
        self._ensure_directory()
        if self._handed_down():
            yield
            return
        lock, fd = self._open_lock()
        held = False
        try:
            self._take(lock, fd, action, asking=action)
            held = True
            yield
        finally:
            if held:
                with suppress(OSError):
                    os.ftruncate(fd, 0)  # no stale holder for the next refusal to name
            os.close(fd)  # closing releases the lock

    def hold(self, command: str, *, waiting: Callable[[str], None] | None = None) -> int:
        """Take the stack's lock for a run of several commands (`command`, e.g.
        `scripts/rotate.sh S certs`, recorded as a `rotate`) and return the lock file's
        descriptor, inheritable: the caller execs the run with it and HELD_LOCK_ENV (`held`),
        so the run's own ups, settings and probes pass (`locked`, `busy`) while any other up,
        down, rekey, setting change or rotation of the stack is refused, naming the run. The
        lock goes when the run and every process it started have exited, killed or not (the
        kernel drops a flock with the last descriptor): a crash leaves nothing to clear.

        Held by what an interrupted rotation started (its record names a rotate.sh that has
        ended), the lock is waited for up to ORPHANS_WAIT_S, `waiting` told why: an up stopping
        its steps in flight ends within seconds, and a rerun at once was refused."""
        self._ensure_directory()
        lock, fd = self._open_lock()
        try:
            try:
                self._take(lock, fd, ROTATE_ACTION, asking=command, command=command)
            except StateError:
                if not _left_by_an_ended_rotation(fd):
                    raise
                if waiting is not None:
                    waiting(
                        f"the processes an interrupted rotation of stack {self.stack} started "
                        f"still hold its lock; waiting up to {ORPHANS_WAIT_S:.0f} s for them to end"
                    )
                self._take_within(lock, fd, command, ORPHANS_WAIT_S)
        except BaseException:
            os.close(fd)
            raise
        os.set_inheritable(fd, True)
        return fd

    def held(self, fd: int) -> str:
        """The value of HELD_LOCK_ENV that hands the lock `hold` returned as `fd` down."""
        return f"{self.stack}:{fd}"

    def _open_lock(self) -> tuple[Path, int]:
        lock = self.directory / f"{self.stack}.lock"
        try:
            # O_NOFOLLOW: a symlink planted at the lock's path would have the open create (or
            # open) its target, anywhere the caller may write (tests/unit/test_applier_state.py).
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise StateError(f"lock file {lock} cannot be opened: {exc.strerror}") from None
            raise StateError(
                f"lock file {lock} is a symbolic link, which nothing here makes; remove it "
                "(and find out who made it)"
            ) from None
        return lock, fd

    def _take(
        self, lock: Path, fd: int, action: str, *, asking: str, command: str | None = None
    ) -> None:
        """flock `fd` at once and record this process as the holder of `action`, or a
        StateError naming the one that holds it and telling to run `asking` again later."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(self._lock_held(lock, _lock_holder(fd), asking)) from None
        _record_holder(fd, action, command)

    def _take_within(self, lock: Path, fd: int, command: str, seconds: float) -> None:
        """`_take` tried again until it succeeds or `seconds` have passed (flock has no
        timeout, and a blocking one could not be given up), then its refusal."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with suppress(StateError):
                self._take(lock, fd, ROTATE_ACTION, asking=command, command=command)
                return
        self._take(lock, fd, ROTATE_ACTION, asking=command, command=command)

    def _handed_down(self) -> bool:
        """Whether this process runs under the stack's lock, held by the run that started it
        (`hold`): HELD_LOCK_ENV names this stack and an inherited descriptor of this very lock
        file, and flock on it succeeds, which it does only on the descriptor that holds the
        lock (a copy of it: the same open file). Anything else (a variable set by hand, a
        descriptor closed or of another file) hands nothing down: the lock is taken as usual."""
        stack, _, number = self._handed.rpartition(":")
        if stack != self.stack or not number.isdigit():
            return False
        fd = int(number)
        try:
            inherited, lock = os.fstat(fd), (self.directory / f"{self.stack}.lock").lstat()
        except OSError:
            return False
        if (inherited.st_dev, inherited.st_ino) != (lock.st_dev, lock.st_ino):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # another open of the file holds it: not handed down to us
        return True

    def busy(self, action: str, *, rotation_only: bool = False) -> str | None:
        """The refusal of `action` (another command than the applier's, e.g. scripts/rotate.sh)
        while an `up`, `down`, `rekey` or rotation (`hold`) of the stack runs, or None; with
        `rotation_only`, only while a rotation runs (a setting changed during a plain up is
        applied by the next up; during a rotation, by one of its own). None under the lock
        handed down by the caller's own run. Read from the holder
        record in `<stack>.lock`, without taking the lock: a moment's flock here would refuse
        an `up` started in that moment. A record left by a killed holder names a pid that no
        longer runs and is ignored; one whose pid runs again (another process: pids are
        reused) is ignored when the kernel's lock table holds no lock on the file
        (`_flock_held`). So the lock file, which stays after every run, refused or not, is
        never taken for a held lock (docs/applier.md). A lock the kernel says is held with no
        live holder recorded refuses too, but for `rotation_only`; and a process the recorded
        holder started, with its variable, passes without its descriptor (`_started_by`)."""
        if self._handed_down():
            return None
        lock = self.directory / f"{self.stack}.lock"
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # none yet (no up ran here), or a symlink, which the up refuses
        try:
            holder = _lock_holder(fd)
            held = _flock_held(fd)
        finally:
            os.close(fd)
        if holder is not None and held is False:
            holder = None  # a record a killed holder left; its pid runs something else
        if holder is None:
            # Held, with no live holder recorded: an up that a killed rotate.sh started, which
            # outlives it, or an applier from before the records. Which command it is cannot
            # be told, so only `rotation_only` callers let it be.
            return self._lock_held(lock, None, action) if held and not rotation_only else None
        if rotation_only and holder["action"] != ROTATE_ACTION:
            return None
        if self._started_by(holder):
            return None
        return self._lock_held(lock, holder, action)

    def _started_by(self, holder: dict[str, Any]) -> bool:
        """Whether this process runs on behalf of the lock's holder without its descriptor:
        HELD_LOCK_ENV names this stack and the holder is one of this process's ancestors. The
        Pulumi program under rotate.sh's `pulumi up` is started by the CLI through its
        language host, which pass the environment on but need not pass other descriptors;
        the program only reads the lock (infra/stack.py `require_stack_unlocked`)."""
        stack, _, _ = self._handed.rpartition(":")
        return stack == self.stack and holder["pid"] in _ancestors()

    def _lock_held(self, lock: Path, holder: dict[str, Any] | None, action: str) -> str:
        """The refusal of `action` while another process holds `lock`: who (when it recorded
        itself), that nothing was changed, and how to go on."""
        if holder is None:
            who = (
                "another process (it recorded no holder: an applier from before 2026-12-03, "
                "one taking the lock this instant, or an up a killed scripts/rotate.sh "
                f"started, which holds its lock until it ends; `fuser -v {lock}` shows it)"
            )
            wait, stop = "it has", "that process"
        elif holder["action"] == ROTATE_ACTION:
            # A rotation is several ups with looks and settings between them: an up, down,
            # setting or second rotation slipped in between lost or doubled its step.
            pid, command = holder["pid"], holder.get("command") or "scripts/rotate.sh"
            return (
                f"stack {self.stack} is being rotated by a running `{command}` (pid {pid}, "
                f"since {holder['since']}; `ps -o pid,etime,args -p {pid}` shows it), which "
                "holds the stack's lock from its first look to its report, across its ups; "
                f"nothing was changed. Run {action} again once that rotation has finished; if "
                f"it hangs, stop it (`kill {pid}`): its lock goes with it and the processes it "
                f"started, and `{command}` run again finishes what it left half done. Do not "
                f"remove {lock.name}: that stops nothing and lets two runs change the stack at "
                "once"
            )
        else:
            pid, theirs = holder["pid"], holder["action"]
            who = (
                f"a running `{theirs}` (pid {pid}, since {holder['since']}; `ps -o "
                f"pid,etime,args -p {pid}` shows it)"
            )
            wait, stop = f"that {theirs} has", f"it (`kill {pid}`)"
        return (
            f"the state of stack {self.stack} is locked by {who}, which may be writing it; "
            f"nothing was changed. Run {action} again once {wait} finished; if it hangs, stop "
            f"{stop}: its lock goes with it. Do not remove {lock.name}: that stops nothing and "
            "lets two runs write the state at once"
        )

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _source(self) -> str:
        return f"the passphrase in {PASSPHRASE_ENV}" if self._passphrase else str(self.key_file)

    def _key_for(self, mode: bytes, salt: bytes, *, creating: bool) -> bytes:
        if self._key is not None and self._key[:2] == (mode, salt):
            return self._key[2]
        if mode == MODE_PASSPHRASE:
            assert self._passphrase is not None
            key = derive_key(self._passphrase, salt)
        else:
            key = self._key_file_key(creating=creating)
        self._key = (mode, salt, key)
        return key

    def _key_file_key(self, *, creating: bool) -> bytes:
        try:
            info = self.key_file.stat()
        except FileNotFoundError:
            if not creating:
                raise StateError(
                    f"the state of stack {self.stack} exists but its key file {self.key_file} "
                    "is missing; restore the key file (or remove the stack with down)"
                ) from None
            self._ensure_directory()
            key = secrets.token_bytes(KEY_BYTES)
            if _create_atomically(self.key_file, key):
                return key
            # Another up (of another stack in this project) created it meanwhile: use theirs,
            # or one of the two states would be sealed with a key that no longer exists.
            info = self.key_file.stat()
        except OSError as exc:  # a symlink loop: it was exit 3, "a bug"
            raise StateError(
                f"key file {self.key_file} cannot be read ({exc.strerror}); restore the "
                "stack's key file there (or remove the stack with down)"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            # Checked before the mode: "chmod 600 it" was the fix given for a directory, and
            # for a symlink to /dev/zero.
            raise StateError(
                f"key file {self.key_file} is not a regular file (a directory, pipe or "
                "device); restore the stack's 32-byte key file there (or remove the stack "
                "with down)"
            )
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise StateError(
                f"key file {self.key_file} is readable by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
            )
        key = self.key_file.read_bytes()
        if len(key) != KEY_BYTES:
            raise StateError(f"key file {self.key_file} is not a {KEY_BYTES}-byte key; restore it")
        return key

    def _ensure_directory(self) -> None:
        # 0755 and 0700 whatever the umask (mkdir only takes bits away), each checked before
        # anything is made in it.
        self.directory.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        _check_owned_directory(self.directory.parent, others=0o022, fix="chmod go-w")
        self.directory.mkdir(exist_ok=True, mode=0o700)
        _check_owned_directory(self.directory, others=0o077, fix="chmod 700")

    def _check_directories(self) -> None:
        """Refuse `.secure-redis` and `.secure-redis/state` unless only their owner (this
        account or root) may change them, and `state` only its owner may enter. mkdir makes
        them so (`state` 0700) but keeps a directory that is already there: one that another
        account may write lets it plant a symlink at the lock's path, or its own key file and
        state, whose passwords and keys the next `up` deploys; one it may read lists the
        stacks. Checked before anything in them is read, created or written."""
        _check_owned_directory(self.directory.parent, others=0o022, fix="chmod go-w")
        if self.directory.exists() or self.directory.is_symlink():
            _check_owned_directory(self.directory, others=0o077, fix="chmod 700")


def _check_owned_directory(path: Path, *, others: int, fix: str) -> None:
    """StateError unless `path` is a real directory (not a symlink), owned by this process's
    user or root, with none of the permission bits in `others`."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise StateError(
            f"directory {path} is a symbolic link; the applier keeps the state only in a "
            "directory of its own: replace the link by the directory it points to"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"{path} is not a directory; move it away")
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise StateError(
            f"directory {path} belongs to uid {info.st_uid}, not to you (uid {me}) or root; "
            "chown it to yourself if it is yours"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & others:
        what = "state directory" if others == 0o077 else "directory"
        raise StateError(f"{what} {path} is open to others (mode {mode:04o}); {fix} {path}")


# A whole scripts/rotate.sh run (`StateStore.hold`, infra/rotation_lock.py).
ROTATE_ACTION: Final = "rotate"
# How long `hold` waits for the processes an ended rotation started to let its lock go.
ORPHANS_WAIT_S: Final = 30.0
# Actions that take the lock (infra/apply.py, `hold`); a record naming another is not trusted.
LOCKING_ACTIONS: Final = ("up", "down", "rekey", ROTATE_ACTION)


def _record_holder(fd: int, action: str, command: str | None = None) -> None:
    """Write this process as the lock's holder into the lock file `fd` (which it holds);
    `command`, a rotation's command line, for the refusal to name."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields: dict[str, Any] = {"pid": os.getpid(), "action": action, "since": since}
    if command is not None:
        fields["command"] = command
    record = json.dumps(fields).encode()
    with suppress(OSError):  # the lock holds without the record; the refusal then says less
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)


def _left_by_an_ended_rotation(fd: int) -> bool:
    """Whether the lock file `fd` records a rotation (`hold`) whose own process has ended:
    then processes it started hold the lock."""
    try:
        holder = json.loads(os.pread(fd, 512, 0))
        pid, action = holder["pid"], holder["action"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    if action != ROTATE_ACTION or not isinstance(pid, int) or pid <= 0:
        return False
    return _lock_holder(fd) is None


def _lock_holder(fd: int) -> dict[str, Any] | None:
    """The holder recorded in the lock file `fd` (another process holds the lock), or None:
    none recorded, not a record, or its pid no longer runs (then another process holds it)."""
    try:
        holder = json.loads(os.pread(fd, 512, 0))
        pid, action, since = holder["pid"], holder["action"], holder["since"]
        command = holder.get("command")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not (isinstance(pid, int) and pid > 0 and action in LOCKING_ACTIONS):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs, as another user
    if _zombie(pid):
        return None
    found = {"pid": pid, "action": action, "since": str(since)[:20]}
    if action == ROTATE_ACTION and isinstance(command, str) and command.isprintable():
        found["command"] = command[:120]
    return found


def _flock_held(fd: int) -> bool | None:
    """Whether a process holds a flock on the file `fd` is open on, from the kernel's lock
    table (/proc/locks: `1: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF`); None where that
    table cannot be read (then the record and its pid decide, as before). Matched on the
    inode number alone: the device the table names is the filesystem's own, which stat's
    differs from on btrfs subvolumes, and a lock missed here would let rotate.sh run beside
    an up; another filesystem's lock on the same inode number only keeps the record
    believed, as it was before this check."""
    inode = str(os.fstat(fd).st_ino)
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in table.splitlines():
        words = line.split()
        # Waiters are `N: -> FLOCK ...`; the lock's holders have FLOCK second.
        if len(words) >= 6 and words[1] == "FLOCK" and words[5].rsplit(":", 1)[-1] == inode:
            return True
    return False


def _ancestors() -> set[int]:
    """The pids of this process's parent, its parent, ... up to init (from /proc; fewer where
    /proc cannot tell)."""
    found: set[int] = set()
    pid = os.getppid()
    while pid > 0 and pid not in found:  # pid 1 too: rotate.sh may be a container's first
        found.add(pid)
        try:
            text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
            pid = int(text.rsplit(")", 1)[-1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def _zombie(pid: int) -> bool:
    """True when `pid` has exited and waits to be reaped: its files, and with them the lock,
    are closed, but `kill -0` still finds it. An `up` SIGKILLed with the rotate.sh that ran
    it stays so until its new parent reaps it (in the randomized walk, seed 5205 on s52,
    2026-12-03, rotate.sh run again at once was refused as "locked by a running `up`" naming
    a pid gone moments later). Where /proc cannot tell, the pid counts as running."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # `pid (comm) state ...`: comm may hold spaces and parentheses, so split at the last ")".
    fields = text.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in {"Z", "X"}


def _read_regular(path: Path, what: str) -> bytes:
    """A state file's bytes; FileNotFoundError when there is none, StateError when it is not
    a regular file (a symlink to /dev/zero was read until memory ran out) or cannot be read
    (a symlink loop was exit 3, "an error the applier does not handle")."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise StateError(
                    f"{what} {path} is not a regular file (a directory, pipe or device); "
                    "restore it from a backup, or remove the stack (down) and the file"
                )
            return handle.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"{what} {path} cannot be read: {exc.strerror}") from None


def _create_atomically(path: Path, data: bytes) -> bool:
    """Like _write_atomically, but only where `path` does not exist yet (a hard link of the
    complete temporary file, refused when a file is there): False, and nothing changed, then."""
    tmp = _temporary(path)
    try:
        _write_synced(tmp, data)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return True


def _remove_stale_key_temporaries(key_file: Path) -> list[Path]:
    """Remove the temporary copies of `key_file` that _create_atomically left (killed between
    its write and its unlink: SIGKILL, a power cut) once they are STALE_KEY_TEMPORARY_S old,
    and return them. Each holds a key: the key file's own (a second name of it, when the
    link was made) or one never used. Left, it outlives a key file removed after a rekey
    (infra/apply.py `_rekey` says when it may be) and still opens the copies sealed with it.
    Younger ones are left: another stack's up may be about to link one (it would fail)."""
    return _remove_temporaries(key_file, older_than=STALE_KEY_TEMPORARY_S)


def _remove_temporaries(path: Path, *, older_than: float = 0.0) -> list[Path]:
    """Remove the regular files `.<name of path>.*.tmp` beside `path` at least `older_than`
    seconds old (never a symbolic link or what it points to), and return them."""
    removed = []
    now = time.time()
    for leftover in sorted(path.parent.glob(f".{path.name}.*.tmp")):
        try:
            info = leftover.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < older_than:
            continue
        try:
            leftover.unlink()
        except FileNotFoundError:
            continue
        removed.append(leftover)
    if removed:
        _fsync_directory(path.parent)
    return removed


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a sibling temporary file 0600, fsync it, rename it over `path`, fsync the dir.
    The temporary file is removed on every way out before the rename, a Ctrl-C or SIGTERM
    between its write and the rename included (tests/unit/test_applier_cli.py, rekey)."""
    tmp = _temporary(path)
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _temporary(path: Path) -> Path:
    """A new sibling name of `path` for its next version."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _write_synced(tmp: Path, data: bytes) -> None:
    """`data` in the new file `tmp` (mode 0600), on disk; the caller removes it."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


__all__ = [
    "HELD_LOCK_ENV",
    "MIN_PASSPHRASE_CHARS",
    "NEW_PASSPHRASE_ENV",
    "PASSPHRASE_ENV",
    "ROTATE_ACTION",
    "STATE_DIR",
    "Rekeyed",
    "ResourceState",
    "StackState",
    "StateError",
    "StateStore",
    "recorded_container",
    "recorded_image",
]
