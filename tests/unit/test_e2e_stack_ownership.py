"""The e2e session removes only the stacks it made from nothing (tests/e2e/stacks.py).

Found following README as a new operator (docs pass, 2026-12-01): `pytest tests/e2e --stack u10
-m "e2e and fault"` on a stack deployed by the setup script, which the session did not find
running healthy at its start (the machine at a load average of 28), ran an `up` on it, took it
as its own and removed it at the end: every container, volume (the cached data) and the
applier's state (every certificate, password and data key). No Docker here: the engine's
answers and the commands the session runs are stand-ins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import stacks
from tests.e2e.claims import Claims


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    ran: list[tuple[str, ...]] = []

    def run(*argv: str) -> tuple[int, str]:
        ran.append(argv)
        return 0, ""

    monkeypatch.setattr(stacks, "_run", run)
    monkeypatch.setattr(stacks, "running", lambda client, name: False)
    return ran


def _session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, on_engine: list[str]
) -> stacks.Deployments:
    monkeypatch.setattr(stacks, "leftovers", lambda client, name: on_engine)
    # Claims of their own: the machine's (tests/e2e/claims.py) are for real runs.
    return stacks.Deployments(client=None, root=tmp_path, claims=Claims(tmp_path / "claims"))


def test_a_stack_already_on_the_engine__is_brought_up_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, commands: list[tuple[str, ...]]
) -> None:
    session = _session(monkeypatch, tmp_path, ["container secure-redis-s1-app", "volume x"])
    session.prepare(["s1"])
    assert ("-m", "infra.apply", "up", "--stack", "s1") in commands
    assert session.owned == []


def test_a_stack_made_from_nothing__is_the_sessions_to_remove(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, commands: list[tuple[str, ...]]
) -> None:
    session = _session(monkeypatch, tmp_path, [])
    session.prepare(["s2"])
    assert ("-m", "infra.apply", "up", "--stack", "s2") in commands
    assert session.owned == ["s2"]


def test_a_stack_with_only_its_state_left__is_someones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(stacks, "leftovers", lambda client, name: [])
    assert stacks.existed_before(None, "s3", root=tmp_path) is False
    state = tmp_path / ".secure-redis" / "state"
    state.mkdir(parents=True)
    (state / "s3.state").write_bytes(b"sealed")
    assert stacks.existed_before(None, "s3", root=tmp_path) is True
