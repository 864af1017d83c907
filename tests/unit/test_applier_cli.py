"""`python -m infra.apply`: the parts that need no Docker engine (plan, input errors)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import apply
from infra.applier import state as state_module
from infra.applier.diff import unfinished as left_unfinished
from infra.applier.drift import Drift
from infra.applier.engine import INCOMPLETE, StackObjects
from infra.applier.errors import NothingChanged
from infra.applier.plan import Plan, plan_stack
from infra.applier.state import (
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    ResourceState,
    StackState,
    StateError,
    StateStore,
    recorded_image,
)
from infra.applier.translate import ContainerSpec
from infra.changes import Change, Op
from infra.components import app_image
from infra.render import render_stack
from infra.settings import REPO_ROOT
from tests.support.app_context import app_context
from tests.support.deployed_state import as_if_up, project_copy
from tests.support.entry_points import assert_quiet_without_a_reader


def test_cli__plan_says_it_is_not_pulumi_and_lists_what_up_would_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = str(project_copy(tmp_path))  # no state there: a first up
    assert apply.main(["plan", "--stack", "dev", "--project-dir", project]) == 0
    out = capsys.readouterr().out
    assert "local applier, not Pulumi" in out
    for name in ("secure-redis-dev-backend", "secure-redis-dev-redis", "secure-redis-dev-app"):
        assert name in out
    assert (
        "create  container secure-redis-dev-redis-init on none, 8 uploads (run to completion)"
        in out
    )


def test_cli__plan_prints_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = str(project_copy(tmp_path, "prod"))
    assert apply.main(["plan", "--stack", "prod", "--project-dir", project]) == 0
    out = capsys.readouterr().out
    assert "PRIVATE KEY" not in out
    assert "BEGIN CERTIFICATE" not in out


def test_cli__unknown_stack_is_exit_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert apply.main(["plan", "--stack", "no-such-stack"]) == 2
    assert "no-such-stack" in capsys.readouterr().err


def test_cli__malformed_stack_name_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert apply.main(["down", "--stack", "../x"]) == 2
    assert "is not a stack name" in capsys.readouterr().err


# -- plan and status against a state (what a previous `up` left), in a scratch project dir ----


@pytest.fixture
def no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_against_the_state_of_an_unchanged_stack_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    as_if_up(project)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "plan: 37 unchanged" in out
    assert "same    tls-ca" in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_names_what_a_changed_setting_replaces_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    as_if_up(project)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  secure-redis:appMemoryMb: 320\n")
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    replaced = [line for line in out.splitlines() if "replace " in line]
    assert len(replaced) == 1, out
    assert "container secure-redis-dev-app on" in replaced[0]
    # The memory limit, and the two byte budgets derived from it (infra/components/app.py:
    # CACHE_FALLBACK_MAX_BYTES, HTTP_MAX_INFLIGHT_BYTES).
    assert replaced[0].endswith(
        ": envs.CACHE_FALLBACK_MAX_BYTES; envs.HTTP_MAX_INFLIGHT_BYTES; memory; memorySwap"
    )
    assert "plan: 1 to replace, 36 unchanged" in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__status_shows_each_certificates_expiry_and_the_data_key_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    as_if_up(project)
    assert apply.main(["status", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    certificates = [line for line in out.splitlines() if "certificate tls-" in line]
    assert len(certificates) == 7
    assert all("days left" in line for line in certificates)
    assert "data keys secrets-data-keyring: generation 1, 0 previous key(s)" in out
    assert "PRIVATE" not in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__an_unreadable_state_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    store = as_if_up(project)
    blob = bytearray(store.path.read_bytes())
    blob[-1] ^= 1
    store.path.write_bytes(bytes(blob))
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not decrypt" in err


@pytest.mark.usefixtures("no_passphrase")
def test_cli__api_token_rotation_rewrites_the_apps_files_and_replaces_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ROTATE of the API token (apiTokenRotationGeneration +1): the token updates, the app's
    material initialiser runs again, the app container stays; no token is printed."""
    project = project_copy(tmp_path)
    state = as_if_up(project).load()
    assert state is not None
    before = next(r for r in state.resources.values() if r.name == "secrets-api-token")
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text() + "  secure-redis:apiTokenRotationGeneration: 1\n")
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "update  secrets-api-token: rotationGeneration" in out
    assert "replace " not in out
    rerun = [line for line in out.splitlines() if "re-run " in line]
    assert len(rerun) == 1, out
    assert (
        "initialiser secure-redis-dev-app-init (writes the app's material; the app keeps running)"
        in rerun[0]
    )
    assert "plan: 1 to update, 1 to re-run" in out
    assert str(before.outputs["value"]) not in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__status_of_an_unknown_stack_names_the_missing_file_not_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply.main(["status", "--stack", "nosuch", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.nosuch.yaml" in err
    assert "run up" not in err


@pytest.mark.usefixtures("no_passphrase")
def test_cli__status_of_a_stack_never_deployed_says_how_to_deploy_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    assert apply.main(["status", "--stack", "dev", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("apply: error: stack dev is not deployed from this checkout")
    assert "scripts/setup-secure-redis.sh dev" in err


def test_cli__a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    """`python -m infra.apply plan --stack S | head -1`: a BrokenPipeError traceback and
    exit 1 before. The command goes on to the end (an up or down is never cut short by its
    reader) and exits with its own status; it only stops printing."""
    project = str(project_copy(tmp_path))
    command = [sys.executable, "-m", "infra.apply", "plan", "--stack", "dev"]
    assert_quiet_without_a_reader([*command, "--project-dir", project], REPO_ROOT)


# -- up: what must hold before anything changes, and the end of a finished up -----------------


def _refused_up(context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run `up` of dev with `context` as the app's build context and no engine to reach;
    the project directory it used."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", context)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # never reached
    project = project_copy(tmp_path)
    assert apply.main(["up", "--stack", "dev", "--project-dir", str(project)]) == 2
    return project


def _one_line_refusing_the_app_image(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line, about the first image built from app/ (the app's, the exporter's
    or the rotation pass's: which one the render declares first varies between runs)."""
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert re.match(
        r"apply: error: stack dev: image secure-redis-dev-(app|exporter|rotation):", err[0]
    )
    assert "nothing was changed" in err[0]
    return err[0]


@pytest.mark.parametrize(
    ("stale", "problem", "fix"),
    [
        # A fresh checkout, `up` run by hand before the wheelhouse was made: it failed with
        # docker's bare `COPY failed: ... wheelhouse/` in the middle of the up.
        (
            False,
            "has no wheelhouse/ (Dockerfile copies it)",
            "run `scripts/build-app-image.sh --wheelhouse-only`, then up again",
        ),
        # app/ edited after the wheelhouse was filled: the image's tag (a digest of the wheels)
        # stayed the same, so `up` changed nothing and the stack went on running the old code.
        (
            True,
            "wheelhouse/ was made from other sources than",
            "Run `scripts/build-app-image.sh --wheelhouse-only`, then up again",
        ),
    ],
    ids=["missing", "stale"],
)
def test_cli__up_without_a_fresh_wheelhouse_says_how_to_make_it_and_changes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stale: bool,
    problem: str,
    fix: str,
) -> None:
    context = app_context(tmp_path, wheelhouse=stale, edited=stale)
    project = _refused_up(context, tmp_path, monkeypatch)
    line = _one_line_refusing_the_app_image(capsys)
    assert problem in line
    assert fix in line
    assert not StateStore(project, "dev").exists()


def test_cli__plan_with_a_stale_wheelhouse_says_up_will_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan of a stale wheelhouse shows the app image unchanged (its tag is the wheels'
    digest); it ends with the refusal `up` will give, and still exits 0."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, edited=True))
    project = project_copy(tmp_path)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out.splitlines()
    notes = [line for line in out if line.startswith("apply: note: up would stop here: ")]
    assert len(notes) == 1, out
    assert "wheelhouse/ was made from other sources than" in notes[0]
    assert "Run `scripts/build-app-image.sh --wheelhouse-only`" in notes[0]


@pytest.mark.parametrize("action", ["up", "plan"])
def test_cli__a_build_context_that_keeps_changing_is_a_refusal_of_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    action: str,
) -> None:
    """infra/images.py `context_digest` reading a wheelhouse being filled again: a wheel
    listed and gone when read each time. Not exit 3, "an error the applier does not handle"
    (FileNotFoundError): exit 2, its line, nothing read past the render."""
    context = app_context(tmp_path, wheelhouse=True)
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", context)
    wheel = next((context / "wheelhouse").glob("*.whl"))
    real_read = Path.read_bytes

    def gone(path: Path) -> bytes:
        if path == wheel:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", gone)
    project = project_copy(tmp_path)
    assert apply.main([action, "--stack", "dev", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("apply: error: stack dev: the build context "), err
    assert "changed while it was read: wheelhouse/" in err[0]
    assert not StateStore(project, "dev").exists()


class _FinishedApplier:
    """An engine on which the up has nothing left to do; asking it for `docker info` (the
    live-restore report after the up) is when a Ctrl-C arrives."""

    def __init__(self) -> None:
        self.client = self

    def find(self, _stack: str) -> StackObjects:
        return StackObjects()

    def missing(self, *_args: Any) -> frozenset[str]:
        return frozenset()

    def drifted(self, *_args: Any) -> dict[str, Any]:
        return {}

    def strangers(self, *_args: Any) -> list[str]:
        return []

    def host_conflicts(self, _plan: Any) -> list[str]:
        return []

    def up(self, *_args: Any, **_kwargs: Any) -> StackObjects:
        return StackObjects()

    def info(self) -> dict[str, Any]:
        os.kill(os.getpid(), signal.SIGINT)
        return {"LiveRestoreEnabled": True}


def test_cli__a_ctrl_c_after_the_up_finished_is_not_reported_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real SIGINT to this process while a finished up reports: it said "up interrupted
    ... run up again to finish" and exit 3 for an up that was complete."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    monkeypatch.setattr(apply, "_applier", _FinishedApplier)
    project = project_copy(tmp_path)
    assert apply.main(["up", "--stack", "dev", "--project-dir", str(project)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "apply: stack dev is up" in out
    assert "apply: up finished in" in out


def test_cli__a_ctrl_c_as_the_last_line_prints_leaves_a_finished_plan_at_exit_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The signal is handled in the middle of printing "plan finished": it answered
    "interrupted; nothing was read or changed" and exit 3."""
    printing = apply.say

    def say(message: str) -> None:
        if message.startswith("plan finished"):
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs inside the print below
        printing(message)

    monkeypatch.setattr(apply, "say", say)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project_copy(tmp_path))]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "apply: plan finished in" in out


def test_down__a_state_that_cannot_be_read_is_said_and_does_not_stop_the_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`down` reads the state only for the containers' grace periods: a state it cannot
    decrypt (another passphrase here) leaves it removing the stack, saying what that costs."""
    StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "one-passphrase-7f3a"}).save(
        StackState("dev")
    )
    store = StateStore(tmp_path, "dev", environ={PASSPHRASE_ENV: "another-passphrase-9c2e"})
    assert apply._state_for_down(store) is None
    out = capsys.readouterr().out
    assert out.startswith("apply: the state cannot be read (")
    assert "not stopped gracefully first" in out
    assert "one-passphrase" not in out
    assert "another-passphrase" not in out


def test_cli__up_of_a_stack_with_no_stack_file_refuses_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped stack name: before, up took the stack's lock first and left an empty
    .secure-redis/state/<name>.lock behind when it found the stack undeclared."""
    project = project_copy(tmp_path)
    before = sorted(project.rglob("*"))
    assert apply.main(["up", "--stack", "deev", "--project-dir", str(project)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("apply: error: no stack 'deev': Pulumi.deev.yaml does not exist in ")
    assert "(stacks there: dev)" in err
    assert err.count("\n") == 1
    assert sorted(project.rglob("*")) == before
    assert "local applier, not Pulumi" not in out


class _EngineHolding:
    """An engine holding `objects` labelled as the stack's; records whether down ran."""

    def __init__(self, objects: StackObjects) -> None:
        self.objects = objects
        self.downs: list[str] = []

    def find(self, _stack: str) -> StackObjects:
        return self.objects

    def down(self, stack: str, **_kwargs: Any) -> StackObjects:
        self.downs.append(stack)
        return self.objects


def test_cli__down_of_a_name_with_no_stack_file_state_or_objects_says_so_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped `down`: before, it took the stack's lock and left an empty
    .secure-redis/state/<name>.lock behind, and said only "nothing to remove". It is a no-op
    at exit 0 (teardown.sh stays safe to run again) that names the stacks there are."""
    engine = _EngineHolding(StackObjects())
    monkeypatch.setattr(apply, "_applier", lambda: engine)
    project = project_copy(tmp_path)
    before = sorted(project.rglob("*"))
    assert apply.main(["down", "--stack", "deev", "--project-dir", str(project)]) == 0
    assert sorted(project.rglob("*")) == before
    out, err = capsys.readouterr()
    assert err == ""
    assert f"apply: no stack 'deev': Pulumi.deev.yaml does not exist in {project} " in out
    assert "(stacks there: dev), no state at " in out
    assert "nothing to remove (a mistyped name?)" in out
    assert "removing every object" not in out, "it says it removes nothing, only that"
    assert engine.downs == []


@pytest.mark.parametrize("left", ["state", "objects"])
def test_cli__down_of_a_stack_whose_file_was_deleted_still_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, left: str
) -> None:
    """Pulumi.<stack>.yaml deleted first: what the state or the engine still holds of the
    stack is removed all the same, and the state with it."""
    engine = _EngineHolding(
        StackObjects(containers=["secure-redis-gone-redis"] * (left == "objects"))
    )
    monkeypatch.setattr(apply, "_applier", lambda: engine)
    store = StateStore(tmp_path, "gone")
    if left == "state":
        store.save(StackState("gone"))
    assert apply.main(["down", "--stack", "gone", "--project-dir", str(tmp_path)]) == 0
    assert engine.downs == ["gone"]
    assert not store.exists()


class _FailingApplier(_FinishedApplier):
    """An engine whose up raises what nothing in the applier expects (a stand-in for a bug)."""

    def up(self, *_args: Any, **_kwargs: Any) -> StackObjects:
        raise LookupError("a value that must not be printed")


def test_cli__an_up_failing_with_an_unexpected_error_ends_in_one_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the exception's traceback (and its text). Now one line: its type, that the
    state records what finished, and the command to run again; exit 3 (README, Exit codes)."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    monkeypatch.setattr(apply, "_applier", _FailingApplier)
    project = project_copy(tmp_path)
    assert apply.main(["up", "--stack", "dev", "--project-dir", str(project)]) == 3
    err = capsys.readouterr().err
    assert err == (
        "apply: error: up of stack dev failed with LookupError, an error the applier does not "
        "handle (a bug: report it); the state records every step finished before it: fix the "
        "cause and run `python -m infra.apply up --stack dev` again to finish\n"
    )


def test_retire__only_the_up_that_drops_a_ca_from_the_bundle_asks_what_redis_serves(
    tmp_path: Path,
) -> None:
    """The applier reads the certificate Redis serves before one up only: the rollover's
    retire step, which leaves the new CA alone in every bundle (infra/apply.py
    `_staying_cas`). The first up, the introduce and the promote keep every CA."""
    project = project_copy(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    state: StackState | None = None
    staying: list[list[str] | None] = []
    for generation in (0, 1, 1, 1):  # first up, introduce, promote, retire
        text = stack_file.read_text().split("  secure-redis:caRolloverGeneration")[0]
        stack_file.write_text(f"{text}  secure-redis:caRolloverGeneration: {generation}\n")
        rendered = apply._render("dev", project, state)
        staying.append(apply._staying_cas(rendered, state))
        state = apply._with_dynamic(state or StackState("dev"), rendered)
    assert staying[:3] == [None, None, None]
    retired = staying[3]
    assert retired is not None
    assert len(retired) == 1, "the new CA alone stays"


def test_cli__a_state_sealed_with_a_short_passphrase_warns_then_rekey_reseals_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack whose state was sealed before the passphrase floor is not locked out: plan
    warns (stderr, never the passphrase) and names `rekey`, which seals it with the new one."""
    short, new = "old-Qx7", "the new state passphrase 91c4e2"
    project = project_copy(tmp_path)
    monkeypatch.setenv(PASSPHRASE_ENV, short)
    with monkeypatch.context() as before_the_floor:
        before_the_floor.setattr(state_module, "MIN_PASSPHRASE_CHARS", 1)
        as_if_up(project)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out, err = capsys.readouterr()
    assert "plan: 37 unchanged" in out
    assert "python -m infra.apply rekey --stack dev" in err
    assert short not in out + err

    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(project)]) == 2
    assert f"rekey needs the new passphrase in {NEW_PASSPHRASE_ENV}" in capsys.readouterr().err

    monkeypatch.setenv(NEW_PASSPHRASE_ENV, new)
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(project)]) == 0
    out, err = capsys.readouterr()
    assert f"put it in {PASSPHRASE_ENV} from now on" in out
    assert new not in out + err
    monkeypatch.setenv(PASSPHRASE_ENV, new)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out, err = capsys.readouterr()
    assert "plan: 37 unchanged" in out
    assert "rekey" not in err


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_shows_the_replacement_of_what_an_interrupted_up_left_unfinished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An up interrupted while it replaced the app (after the old one's graceful stop, before
    its successor was healthy) records the successor unfinished; the next up replaces it.
    Before, plan said "37 unchanged" there (seen on s80, 2026-12-02) while the up replaced
    the app."""
    project = project_copy(tmp_path)
    store = as_if_up(project)
    state = store.load()
    assert state is not None
    urn, app = next((u, r) for u, r in state.resources.items() if u.endswith("::app-container"))
    state.resources[urn] = ResourceState(app.type, app.name, app.id, app.inputs, {INCOMPLETE: True})
    store.save(state)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    replaced = [line for line in out.splitlines() if "replace " in line]
    assert len(replaced) == 1, out
    assert "replace container secure-redis-dev-app" in replaced[0]
    assert "left unfinished by an interrupted or failed up" in replaced[0]
    assert "plan: 1 to replace, 36 unchanged" in out


def _as_if_up_with_redis_init_unfinished(project: Path) -> None:
    """dev as an up left it, but for Redis's initialiser, recorded as left unfinished."""
    store = as_if_up(project)
    state = store.load()
    assert state is not None
    plan = plan_stack("dev", render_stack("dev", root=project).resources, root=project)
    urn = next(
        s.urn
        for s in plan.steps
        if isinstance(s.spec, ContainerSpec) and s.spec.name == "secure-redis-dev-redis-init"
    )
    init = state.resources[urn]
    state.resources[urn] = ResourceState(
        init.type, init.name, init.id, init.inputs, {INCOMPLETE: True}
    )
    store.save(state)


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_says_an_initialiser_is_re_run_and_its_consumer_keeps_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan16 (s46, 2026-12-03): a changed material file planned `replace container
    secure-redis-s46-redis-init ...`, which read as if Redis itself were replaced."""
    project = project_copy(tmp_path)
    _as_if_up_with_redis_init_unfinished(project)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    changed = [line for line in out.splitlines() if "secure-redis-dev-redis-init" in line]
    assert len(changed) == 1, out
    assert changed[0].startswith(
        "apply:   re-run  initialiser secure-redis-dev-redis-init (writes Redis's material; "
        "Redis keeps running): "
    ), changed[0]
    assert "left unfinished by an interrupted or failed up" in changed[0]
    assert "replace container secure-redis-dev-redis-init" not in out
    assert "plan: 1 to re-run, 36 unchanged" in out


class _QuietEngine(_FinishedApplier):
    """An engine as the last up left it, whose `docker info` is only read; the objects the
    state records unfinished are missing from it (as engine.py `missing` says)."""

    def missing(self, plan: Plan, state: StackState) -> frozenset[str]:
        return frozenset(left_unfinished(plan, state.resources))

    def refuse_before_change(self, *_args: Any) -> None:
        return None

    def info(self) -> dict[str, Any]:
        return {"LiveRestoreEnabled": True}


@pytest.mark.usefixtures("no_passphrase")
def test_cli__the_counts_of_plan_status_and_up_call_an_initialiser_re_run_as_its_line_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """day2ux16 (s48, 2026-12-03): the line read `re-run  initialiser ...-redis-init (...; Redis
    keeps running)` and the counts under it `1 to replace` (`1 replaced` after the up)."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    monkeypatch.setattr(apply, "_applier", lambda **_kwargs: _QuietEngine())
    project = project_copy(tmp_path)
    _as_if_up_with_redis_init_unfinished(project)
    args = ["--stack", "dev", "--project-dir", str(project)]
    assert apply.main(["plan", *args]) == 0
    assert "apply: plan: 1 to re-run, 36 unchanged\n" in capsys.readouterr().out
    assert apply.main(["status", *args]) == 0
    out = capsys.readouterr().out
    assert "apply: next up: re-run initialiser secure-redis-dev-redis-init" in out
    assert "apply: next up: 1 to re-run, 36 unchanged (" in out
    assert apply.main(["up", *args]) == 0
    out = capsys.readouterr().out
    assert "apply: plan: 1 to re-run, 36 unchanged\n" in out
    assert "apply: stack dev is up: 1 re-run, 36 unchanged\n" in out
    assert "replace" not in out


class _RedisRunningEngine(_QuietEngine):
    """An engine on which the stack's Redis runs (the one inspect `_retire_asks` makes)."""

    def __init__(self) -> None:
        super().__init__()
        self.containers = self

    def get(self, name: str) -> Any:
        assert name == "secure-redis-dev-redis", name
        return type("Container", (), {"status": "running"})()


class _NoProbe:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("plan must not ask what Redis serves: it runs commands in containers")


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_and_status_say_the_up_of_a_ca_retire_asks_redis_first_and_do_not_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan16: plan did not show that up asks Redis which CA's certificate it serves before
    a retire (`_retire_refusal`), and stops there when the promote's reload did not take.
    The question is a `docker exec` in the app and Redis (rotation_probe.Probe, with a
    Docker client of its own, not plan's read-only one), so plan says that up will ask."""
    from infra import rotation_probe  # noqa: PLC0415

    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    monkeypatch.setattr(apply, "_applier", lambda **_kwargs: _RedisRunningEngine())
    monkeypatch.setattr(apply, "_staying_cas", lambda rendered, state: ["5c1e"])
    monkeypatch.setattr(rotation_probe, "Probe", _NoProbe)
    project = project_copy(tmp_path)
    as_if_up(project)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    (note,) = [line for line in capsys.readouterr().out.splitlines() if "CA 5c1e" in line]
    assert note.startswith(
        "apply: note: up asks Redis first which CA's certificate it serves: this up retires a CA "
        "(the trust bundle keeps CA 5c1e), and it stops, changing nothing, when Redis serves"
    ), note
    assert "rotation_probe snapshot --stack dev --applier-state" in note
    # `status` says what the next up does (its `next up:` lines): this too, in the same
    # words (apply.py `_retire_note`, the one function both print it with). It said
    # nothing of it before (session 18, 2026-12-03).
    assert apply.main(["status", "--stack", "dev", "--project-dir", str(project)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert [line for line in said if "CA 5c1e" in line] == [note]
    assert said.index(note) == len(said) - 1, "after the next up's summary, as in plan"


def _plan_of(tmp_path: Path) -> Plan:
    project = project_copy(tmp_path)
    return plan_stack("dev", render_stack("dev", root=project).resources, root=project)


def _replace(plan: Plan, *names: str) -> list[Change]:
    steps = {s.spec.name: s for s in plan.steps if isinstance(s.spec, ContainerSpec)}
    return [
        Change(steps[n].urn, steps[n].type, n, Op.REPLACE, ("material server.key (mode)",))
        for n in names
    ]


def test_change_words__an_initialiser_whose_consumer_is_replaced_too_does_not_say_it_runs_on(
    tmp_path: Path,
) -> None:
    plan = _plan_of(tmp_path)
    changes = _replace(plan, "secure-redis-dev-redis-init", "secure-redis-dev-redis")
    assert apply._change_words(changes[0], plan, changes) == (
        "re-run",
        "initialiser secure-redis-dev-redis-init (writes Redis's material; Redis is replaced "
        "too: its own line): material server.key (mode)",
    )
    verb, what = apply._change_words(changes[1], plan, changes)
    assert (verb, what.split(" on ")[0]) == ("replace", "container secure-redis-dev-redis")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("secure-redis-dev-app-init", "(writes the app's material; the app keeps running)"),
        ("secure-redis-dev-rotation-init", "(writes the rotation pass's material):"),
        (
            "secure-redis-dev-redis-exporter-init",
            "(writes the exporter's material; the exporter keeps running)",
        ),
    ],
)
def test_change_words__each_initialiser_names_whose_material_it_writes(
    tmp_path: Path, name: str, words: str
) -> None:
    plan = _plan_of(tmp_path)
    changes = _replace(plan, name)
    verb, what = apply._change_words(changes[0], plan, changes)
    assert verb == "re-run"
    assert what.startswith(f"initialiser {name} {words}"), what


def test_change_words__a_reload_job_run_to_completion_is_not_called_an_initialiser(
    tmp_path: Path,
) -> None:
    plan = _plan_of(tmp_path)
    job = next(
        s.spec.name
        for s in plan.steps
        if isinstance(s.spec, ContainerSpec) and s.spec.lifecycle.attach and not s.spec.uploads
    )
    assert job is not None
    changes = _replace(plan, job)
    verb, what = apply._change_words(changes[0], plan, changes)
    assert verb == "replace"
    assert what.startswith(f"container {job} on "), what


@pytest.mark.parametrize("moment", ["_write_synced", "_fsync_directory"])
def test_cli__a_rekey_interrupted_leaves_the_state_sealed_with_one_passphrase_and_says_so(
    moment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real SIGINT while the new seal is written (before the file is replaced) or right
    after the replace: the state opens with exactly one of the two passphrases, no temporary
    file is left, and the line says so. It said "run rekey again to finish", which the old
    passphrase is refused for once the file was replaced."""
    old, new = "the old state passphrase 5a1e", "the new state passphrase 77d0"
    project = project_copy(tmp_path)
    monkeypatch.setenv(PASSPHRASE_ENV, old)
    StateStore(project, "dev").save(StackState("dev", {}))
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, new)
    step = getattr(state_module, moment)

    def interrupted(*args: Any) -> Any:
        done = step(*args)
        os.kill(os.getpid(), signal.SIGINT)  # its handler runs as this returns
        return done

    monkeypatch.setattr(state_module, moment, interrupted)
    assert apply.main(["rekey", "--stack", "dev", "--project-dir", str(project)]) == 3
    out, err = capsys.readouterr()
    assert "sealed with the old passphrase or the new one, never neither" in err
    assert "again to finish" not in err
    assert old not in out + err
    assert new not in out + err
    took = moment == "_fsync_directory"
    with pytest.raises(StateError):
        StateStore(project, "dev", {PASSPHRASE_ENV: old if took else new}).load()
    assert StateStore(project, "dev", {PASSPHRASE_ENV: new if took else old}).load() is not None
    assert sorted(p.name for p in (project / ".secure-redis" / "state").iterdir()) == [
        "dev.lock",
        "dev.state",
    ]


@pytest.mark.usefixtures("no_passphrase")
def test_cli__the_app_image_the_retire_guard_trusts_is_the_one_the_state_records(
    tmp_path: Path,
) -> None:
    """infra/apply.py `_retire_refusal` trusts only an app container running the image its
    state records (tests/integration/test_rotation_probe_served.py has the containers): the
    app's own record, not another container's; none while an interrupted up left it
    unfinished."""
    project = project_copy(tmp_path)
    store = as_if_up(project)
    state = store.load()
    assert state is not None
    urn, app = next((u, r) for u, r in state.resources.items() if u.endswith("::app-container"))
    image = "sha256:" + "a" * 64
    state.resources[urn] = ResourceState(app.type, app.name, app.id, app.inputs, {"imageId": image})
    assert recorded_image(state, "secure-redis-dev-app") == image
    assert recorded_image(state, "secure-redis-prod-app") is None
    state.resources[urn] = ResourceState(app.type, app.name, app.id, app.inputs, {INCOMPLETE: True})
    assert recorded_image(state, "secure-redis-dev-app") is None
    assert recorded_image(None, "secure-redis-dev-app") is None


class _Network:
    def __init__(self, name: str, network_id: str) -> None:
        self.name, self.id = name, network_id
        self.attrs: dict[str, Any] = {"Labels": {}}


class _SharedNames:
    """A docker client stand-in on which every network name two networks share."""

    def __init__(self) -> None:
        self.api = None
        self.networks = self

    def list(self, names: list[str]) -> list[_Network]:
        return [_Network(names[0], f"{n}" * 64) for n in "ab"]


class _RefusingApplier(_FinishedApplier):
    """The real applier's `up` on that client: refused before its first change."""

    def up(self, *args: Any, **kwargs: Any) -> StackObjects:
        from infra.applier.engine import LocalApplier  # noqa: PLC0415 - as apply imports it

        return LocalApplier(_SharedNames(), say=lambda _m: None).up(*args, **kwargs)


def test_cli__an_up_refused_before_its_first_change_says_only_that_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the shared-network-name refusal ("... nothing was changed") apply.py added its
    line for a failure part-way, "the state records what was applied before the failure",
    which says the opposite. A refusal before the first change now ends in its own line only."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    monkeypatch.setattr(apply, "_applier", _RefusingApplier)
    project = project_copy(tmp_path)
    assert apply.main(["up", "--stack", "dev", "--project-dir", str(project)]) == 3
    err = capsys.readouterr().err
    assert "2 networks are named secure-redis-dev-" in err
    assert "applied before the failure" not in err
    assert err.count("nothing was changed") == 1, err
    assert err.count("\n") == 1, err


class _DriftedEngine(_FinishedApplier):
    """An engine on which the app container was changed by hand since the last up (its memory
    limit: drift.py), a stranger sits on the backend network and Redis's name is held by a
    container the stack did not make; `up` must never be reached from a plan."""

    def __init__(self, app_urn: str, redis_urn: str) -> None:
        super().__init__()
        self.app_urn, self.redis_urn = app_urn, redis_urn

    def drifted(self, *_args: Any) -> dict[str, Any]:
        return {self.app_urn: Drift(updatable=("HostConfig.Memory",))}

    def strangers(self, *_args: Any) -> list[str]:
        return ["network secure-redis-dev-backend has a container the stack does not declare: x"]

    def refuse_before_change(self, _plan: Any, _state: Any, changes: Any) -> None:
        assert any(c.urn == self.app_urn and c.op is Op.UPDATE for c in changes)
        raise NothingChanged("container secure-redis-dev-redis is held by another (a test)")

    def up(self, *_args: Any, **_kwargs: Any) -> StackObjects:
        raise AssertionError("plan must not apply anything")


def _with_drifted_engine(project: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`project` deployed (as if by an up) onto a _DriftedEngine that apply.py gets from
    `_applier`; the list collects the arguments of each `_applier` call."""
    state = as_if_up(project).load()
    assert state is not None
    app = next(u for u in state.resources if u.endswith("::app-container"))
    redis = next(u for u in state.resources if u.endswith("::redis-container"))
    asked: list[dict[str, Any]] = []

    def engine(**kwargs: Any) -> _DriftedEngine:
        asked.append(kwargs)
        return _DriftedEngine(app, redis)

    monkeypatch.setattr(apply, "_applier", engine)
    return asked


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_shows_what_up_would_do_about_changes_made_on_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan` said "37 unchanged" while the next up updated or replaced a container changed
    behind the applier's back (drift.py): it now asks the engine with the up's own code,
    through a client that only reads, and says what the up would do and what would stop it."""
    monkeypatch.setattr(app_image, "IMAGE_CONTEXT", app_context(tmp_path, wheelhouse=True))
    project = project_copy(tmp_path)
    asked = _with_drifted_engine(project, monkeypatch)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert asked == [{"read_only": True}]
    (updated,) = [line for line in out.splitlines() if " update " in line]
    assert "update  container secure-redis-dev-app" in updated
    assert updated.endswith("changed on the engine since the last up: HostConfig.Memory")
    assert "plan: 1 to update, 36 unchanged" in out
    assert (
        "apply: warning: network secure-redis-dev-backend has a container the stack does not "
        "declare: x (up names it too and leaves it there: not the stack's)"
    ) in out
    assert (
        "apply: note: up would stop here: container secure-redis-dev-redis is held by another"
    ) in out
    assert "not reachable" not in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__plan_without_an_engine_says_it_could_not_check_for_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No engine (tests/unit/conftest.py points DOCKER_HOST nowhere): the state's view, and a
    line saying that changes made on the engine are not in it, instead of a bare "unchanged"."""
    project = project_copy(tmp_path)
    as_if_up(project)
    assert apply.main(["plan", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "plan: 37 unchanged" in out
    (note,) = [line for line in out.splitlines() if "not reachable" in line]
    assert note.startswith("apply: note: the Docker engine is not reachable")
    assert "This plan is the state's alone" in note
    assert "Changes made behind the applier's back" in note


@pytest.mark.usefixtures("no_passphrase")
def test_cli__status_ends_with_what_the_next_up_would_change_on_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` read the state alone, so a stack changed behind the applier's back looked as
    healthy as any; it now ends with the plan's view of the engine (the same decisions, the
    same read-only client), one line per change or stranger and the summary."""
    project = project_copy(tmp_path)
    asked = _with_drifted_engine(project, monkeypatch)
    assert apply.main(["status", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert asked == [{"read_only": True}]
    assert "data keys secrets-data-keyring: generation 1" in out
    lines = [line for line in out.splitlines() if line.startswith("apply: next up: ")]
    assert len(lines) == 2, out
    assert lines[0].startswith("apply: next up: update container secure-redis-dev-app on ")
    assert lines[0].endswith(": changed on the engine since the last up: HostConfig.Memory")
    assert lines[1].startswith("apply: next up: 1 to update, 36 unchanged")
    assert "apply: warning: network secure-redis-dev-backend has a container" in out


@pytest.mark.usefixtures("no_passphrase")
def test_cli__status_without_an_engine_says_the_next_up_was_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    as_if_up(project)
    assert apply.main(["status", "--stack", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "apply: next up: not checked against the engine: the Docker engine is not reachable" in (
        out
    )
