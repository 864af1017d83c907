"""Which e2e run holds each stack it uses on this machine's Docker engine.

A stack name is one set of Docker objects per engine, whichever checkout deployed it. Two e2e
runs on one machine (two worktrees, or a run killed before its end removed its stacks) met
there: on 2026-12-04 a run found dev and prod running, deployed by another checkout's run
that had been killed, reused them, and every test that runs an `up` failed with "stack dev has
Docker objects but no state at ...". So a run writes a claim for each stack it uses, naming
its checkout and its process. Another run waits for a live holder, removes what a dead one
deployed, and does not use a running stack whose state is in another checkout
(tests/e2e/stacks.py acts on the verdict).

A holder is one process: scripts/test.sh names itself (HOLDER_ENV), as its e2e part runs in
several processes; a pytest session on its own is its own holder. Its start time is kept with
its pid, so a pid the kernel gave again to another process is not taken for the run.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

HOLDER_ENV: Final = "SECURE_REDIS_E2E_HOLDER"
CLAIMS_DIR_ENV: Final = "SECURE_REDIS_E2E_CLAIMS"
# Machine-wide, as the Docker engine is: not in the checkout, whose name is what differs.
DEFAULT_DIR: Final = Path(tempfile.gettempdir()) / "secure-redis-e2e-claims"


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, /proc/PID/stat field 22), or None
    when there is no such process. The command name (field 2) may hold spaces and brackets,
    so the fields are counted from its closing one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


@dataclass(frozen=True)
class Holder:
    """One e2e run: its checkout and the process whose life is the run's."""

    checkout: str
    pid: int
    started: int

    def alive(self) -> bool:
        return process_start(self.pid) == self.started

    def describe(self) -> str:
        return f"the e2e run of {self.checkout} (pid {self.pid})"


def this_run(checkout: Path) -> Holder:
    """The holder for this process: HOLDER_ENV's process when set, else this one."""
    given = os.environ.get(HOLDER_ENV, "")
    if given and not given.isdigit():
        raise ValueError(f"{HOLDER_ENV}={given!r}: expected the pid of the e2e run's process")
    pid = int(given) if given else os.getpid()
    started = process_start(pid)
    if started is None:
        raise ValueError(f"{HOLDER_ENV}={pid}: no such process (expected the e2e run's own)")
    return Holder(checkout=str(checkout.resolve()), pid=pid, started=started)


@dataclass(frozen=True)
class Claim:
    holder: Holder
    deployed: bool  # the run made the stack from nothing: its to remove


class Verdict(enum.Enum):
    USE = "use"  # no other run holds it: reuse it when running, else deploy it
    WAIT = "wait"  # another run, still going, holds it
    REMOVE_FIRST = "remove first"  # a run that ended deployed it and left it
    REFUSE = "refuse"  # it runs, but its state is another checkout's


def verdict(
    claim: Claim | None, me: Holder, *, running: bool, state_here: bool
) -> tuple[Verdict, str]:
    """What a run does with a stack, and why in words: the one place this is decided."""
    if claim is not None and claim.holder != me:
        if claim.holder.alive():
            return Verdict.WAIT, f"it is in use by {claim.holder.describe()}"
        if claim.deployed:
            return (
                Verdict.REMOVE_FIRST,
                f"{claim.holder.describe()} deployed it and ended without removing it",
            )
    if running and not state_here:
        return Verdict.REFUSE, (
            "it runs, but this checkout has no state for it (deployed from another checkout or "
            "by hand); the e2e tests run ups and rotations on it, which need its state. Run them "
            "from the checkout that deployed it, or remove it with `python -m infra.apply down "
            "--stack NAME` (its cached data and every secret go with it)"
        )
    return Verdict.USE, ""


class Claims:
    """The claim files: one JSON file per stack, read and written under one lock."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(os.environ.get(CLAIMS_DIR_ENV) or DEFAULT_DIR)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while a run reads a claim and writes its own: two runs never both take a
        stack. (Python opens files close-on-exec, so no child keeps the lock.)"""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _path(self, stack: str) -> Path:
        return self.directory / f"{stack}.json"

    def read(self, stack: str) -> Claim | None:
        """The stack's claim; None when there is none or it cannot be read (a claim half
        written by a run killed then is no claim: nothing names its holder)."""
        try:
            raw = json.loads(self._path(stack).read_text())
            return Claim(holder=Holder(**raw["holder"]), deployed=bool(raw["deployed"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write(self, stack: str, claim: Claim) -> None:
        path = self._path(stack)
        part = path.with_suffix(".part")
        part.write_text(json.dumps({"holder": asdict(claim.holder), "deployed": claim.deployed}))
        part.replace(path)

    def release(self, stack: str, me: Holder) -> None:
        """Remove the stack's claim if it is `me`'s."""
        with self.locked():
            claim = self.read(stack)
            if claim is not None and claim.holder == me:
                self._path(stack).unlink()

    def held_by(self, me: Holder) -> list[str]:
        """The stacks `me` holds."""
        with self.locked():
            names = [p.stem for p in self.directory.glob("*.json")]
            return sorted(n for n in names if (c := self.read(n)) and c.holder == me)
