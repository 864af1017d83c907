"""Two e2e runs on one Docker engine (tests/e2e/claims.py, tests/e2e/stacks.py).

Found by CI on 2026-12-04: a fresh clone's run found dev and prod running, deployed by another
checkout's run that had been killed; it reused them, and every test that runs an `up` failed
with "stack dev has Docker objects but no state at ...". No Docker here: the engine's answers
and the commands a session runs are stand-ins; the claims and the processes are real.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import stacks
from tests.e2e.claims import (
    HOLDER_ENV,
    Claim,
    Claims,
    Holder,
    Verdict,
    process_start,
    this_run,
    verdict,
)

UP = ("-m", "infra.apply", "up", "--stack", "dev")
DOWN = ("-m", "infra.apply", "down", "--stack", "dev")


def _holder(pid: int, checkout: str = "/elsewhere") -> Holder:
    started = process_start(pid)
    assert started is not None
    return Holder(checkout=checkout, pid=pid, started=started)


@pytest.fixture
def ended() -> Holder:
    """A run whose process has ended."""
    proc = subprocess.Popen(["sleep", "60"])
    holder = _holder(proc.pid)
    proc.kill()
    proc.wait()
    return holder


@pytest.fixture
def going() -> Iterator[Holder]:
    """Another checkout's run, still going."""
    proc = subprocess.Popen(["sleep", "60"])
    yield _holder(proc.pid)
    proc.kill()
    proc.wait()


class Engine:
    """What the session sees of the engine and what it runs there."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path, *, running: bool) -> None:
        self.running = running
        self.state = root / "checkout" / ".secure-redis" / "state" / "dev.state"
        self.ran: list[tuple[str, ...]] = []
        monkeypatch.setattr(stacks, "_run", self.run)
        monkeypatch.setattr(stacks, "running", lambda client, name: self.running)
        monkeypatch.setattr(stacks, "leftovers", lambda client, name: [])
        monkeypatch.delenv(HOLDER_ENV, raising=False)

    def run(self, *argv: str) -> tuple[int, str]:
        self.ran.append(argv)
        if argv == DOWN:
            self.running = False
            self.state.unlink(missing_ok=True)
        if argv == UP:
            self.running = True
            self.state.parent.mkdir(parents=True, exist_ok=True)
            self.state.write_bytes(b"sealed")
        return 0, ""


def _session(
    tmp_path: Path, wait_s: float = stacks.CLAIM_WAIT_S, poll_s: float = stacks.CLAIM_POLL_S
) -> stacks.Deployments:
    return stacks.Deployments(
        client=None,
        root=tmp_path / "checkout",
        claims=Claims(tmp_path / "claims"),
        wait_s=wait_s,
        poll_s=poll_s,
    )


def _claimed(tmp_path: Path, holder: Holder) -> Claims:
    """The session's claims directory with stack dev claimed by `holder`, which deployed it."""
    claims = Claims(tmp_path / "claims")
    with claims.locked():
        claims.write("dev", Claim(holder, deployed=True))
    return claims


def test_process_start__tells_a_reused_pid_from_the_run(ended: Holder) -> None:
    assert _holder(os.getpid()).alive()
    assert not ended.alive()
    assert not Holder("/x", os.getpid(), started=_holder(os.getpid()).started + 1).alive()


def test_verdict__each_case_in_words(going: Holder, ended: Holder) -> None:
    me = _holder(os.getpid(), "/here")
    assert verdict(None, me, running=False, state_here=False)[0] is Verdict.USE
    assert verdict(None, me, running=True, state_here=True)[0] is Verdict.USE
    assert verdict(Claim(me, deployed=True), me, running=True, state_here=True)[0] is Verdict.USE
    decided, why = verdict(Claim(going, deployed=False), me, running=True, state_here=False)
    assert decided is Verdict.WAIT
    assert f"pid {going.pid}" in why
    decided, why = verdict(Claim(ended, deployed=True), me, running=True, state_here=False)
    assert decided is Verdict.REMOVE_FIRST
    assert "ended without removing it" in why
    # A run that ended and only reused the stack leaves it as it was: someone's.
    decided, why = verdict(Claim(ended, deployed=False), me, running=True, state_here=False)
    assert decided is Verdict.REFUSE
    assert "no state for it" in why


def test_a_running_stack_with_its_state_in_another_checkout__is_refused_not_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True)
    session = _session(tmp_path)
    session.prepare(["dev"])
    assert "this checkout has no state for it" in session.failed["dev"]
    assert "python -m infra.apply down --stack dev" in session.failed["dev"]
    assert engine.ran == []
    with pytest.raises(RuntimeError, match="no state for it"):
        session.ensure("dev")


def test_a_stack_a_killed_run_deployed__is_removed_then_deployed_and_owned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ended: Holder
) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True)
    claims = _claimed(tmp_path, ended)
    session = _session(tmp_path)
    session.prepare(["dev"])
    assert session.failed == {}
    assert engine.ran.index(DOWN) < engine.ran.index(UP)
    assert session.owned == ["dev"]
    claim = claims.read("dev")
    assert claim == Claim(session.me, deployed=True)


def test_a_stack_another_live_run_holds__is_waited_for_then_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, going: Holder
) -> None:
    engine = Engine(monkeypatch, tmp_path, running=True)
    claims = _claimed(tmp_path, going)
    session = _session(tmp_path, wait_s=0.2, poll_s=0.05)
    session.prepare(["dev"])
    assert f"in use by the e2e run of /elsewhere (pid {going.pid})" in session.failed["dev"]
    assert engine.ran == []
    assert claims.read("dev") == Claim(going, deployed=True)


def test_a_stack_another_run_releases_while_waited_for__is_then_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, going: Holder
) -> None:
    engine = Engine(monkeypatch, tmp_path, running=False)
    claims = _claimed(tmp_path, going)
    polls = 0

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            claims.release("dev", going)

    monkeypatch.setattr("tests.e2e.stacks.time.sleep", sleep)
    session = _session(tmp_path, wait_s=3600, poll_s=5)
    session.prepare(["dev"])
    assert polls == 3
    assert session.failed == {}
    assert UP in engine.ran
    assert DOWN not in engine.ran
    assert session.owned == ["dev"]


def test_the_session_s_teardown__releases_what_it_claimed_and_only_that(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Engine(monkeypatch, tmp_path, running=False)
    session = _session(tmp_path)
    session.prepare(["dev"])
    claims = session.claims
    assert claims.held_by(session.me) == ["dev"]
    # A second session of the same run (scripts/test.sh's pytest sessions) uses it, claims
    # nothing, and so releases nothing at its end.
    second = _session(tmp_path)
    second.prepare(["dev"])
    assert second.claimed == []
    second.teardown()
    assert claims.held_by(session.me) == ["dev"]
    session.teardown()
    assert claims.held_by(session.me) == []


def test_a_claim_half_written__is_no_claim(tmp_path: Path) -> None:
    claims = Claims(tmp_path)
    tmp_path.joinpath("dev.json").write_text('{"holder": {"checkout": "/x", "pid"')
    assert claims.read("dev") is None
    tmp_path.joinpath("dev.json").write_text(json.dumps({"holder": {"pid": 1}, "deployed": 1}))
    assert claims.read("dev") is None


def test_the_holder_named_in_the_environment__must_be_a_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ended: Holder
) -> None:
    monkeypatch.setenv(HOLDER_ENV, "abc")
    with pytest.raises(ValueError, match="expected the pid"):
        this_run(tmp_path)
    monkeypatch.setenv(HOLDER_ENV, str(ended.pid))
    with pytest.raises(ValueError, match="no such process"):
        this_run(tmp_path)
    monkeypatch.setenv(HOLDER_ENV, str(os.getppid()))
    assert this_run(tmp_path).pid == os.getppid()
