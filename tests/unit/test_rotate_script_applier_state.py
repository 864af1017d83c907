"""scripts/rotate.sh's `--applier-state` wiring, run as a script: the probe it runs trusts the
images and containers the local applier's state records when rotate.sh deploys with the local
applier, and labels only when it deploys with `pulumi up`, whose stack that state, if any, did
not deploy (docs/day2.md). rotate.sh runs as it is;
`docker`, `pulumi` and the Python commands it runs are stand-ins, except `python -m
infra.rotation_probe`, which runs the real `infra.rotation_probe.main` (its argument parser and
how it makes its Probe) with only what looks at a stack replaced. No Docker engine, Redis or
stack file is touched (the stack file is read, never written: `infra.stack_config set` is a
stand-in)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

STACK = "dev"  # rotate.sh requires its Pulumi.STACK.yaml; only read, by the real probe's main

FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "docker $*" >>"$FAKE_LOG"
# `start`: the data-key rotation pass (`all`), which finishes at once here.
[ "$1" = info ] || [ "$1" = start ] || { echo "fake docker: unexpected $*" >&2; exit 99; }
"""
# `pulumi whoami` answers only when FAKE_PULUMI_LOGGED_IN is 1 (rotate.sh's pulumi_ready).
FAKE_PULUMI = r"""#!/usr/bin/env bash
echo "pulumi $*" >>"$FAKE_LOG"
case "$1" in
    whoami) [ "$FAKE_PULUMI_LOGGED_IN" = 1 ] ;;
    config | up) ;;
    *) echo "fake pulumi: unexpected $*" >&2; exit 99 ;;
esac
"""
FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "python $*" >>"$FAKE_LOG"
case "$2 $3" in
    # FAKE_TOKEN_ROTATION: apiTokenRotationGeneration (what api-token-retire raises the retire
    # generation to); every other setting reads 1.
    "infra.stack_config get")
        case "$6" in apiTokenRotationGeneration) echo "$FAKE_TOKEN_ROTATION" ;; *) echo 1 ;; esac ;;
    "infra.stack_config set") ;;
    # scripts/rotate.sh takes the stack's lock for its whole run (infra/rotation_lock.py):
    # here it is handed over at once, as the real one does once it holds it.
    "infra.rotation_lock "*)
        lock="$4:stand-in"; shift 7; SECURE_REDIS_STACK_LOCK="$lock" exec "$@" ;;
    "infra.apply up") echo "apply: the up's own lines" ;;
    "infra.apply plan") echo "${FAKE_PLAN:-apply: plan: 37 unchanged}" ;;
    "infra.rotation_probe "*) shift 2; exec "$REAL_PYTHON" "$PROBE_SHIM" "$@" ;;
    *) echo "fake python: unexpected $*" >&2; exit 99 ;;
esac
"""
# The real main; the Probe (which would ask Docker) and the state read are stand-ins that log
# what main gave them, and the judgements of snapshots (empty ones here) pass.
PROBE_SHIM = r"""
import os
import sys

sys.path.insert(0, os.environ["REPO_ROOT"])
from infra import rotation_probe  # noqa: E402

log = open(os.environ["FAKE_LOG"], "a")


class StandInProbe:
    def __init__(self, stack, port, *, recorded=None, reread=None, **_):
        trusts = "the state" if recorded is not None else "labels only"
        log.write(f"probe {sys.argv[1]}: trusts {trusts}, can reread: {reread is not None}\n")

    def snapshot(self):
        # FAKE_SNAPSHOT_ERROR: the snapshot fails as the real one does on that cause.
        if error := os.environ.get("FAKE_SNAPSHOT_ERROR"):
            kind, _, text = error.partition(":")
            raise getattr(rotation_probe, kind)(text)
        # The keys read_snapshot requires of a --before file; their values are never judged.
        # FAKE_PREVIOUS_TOKENS: earlier API tokens the app accepts (an api-token rotation
        # waiting for its retire); "unread": the count is missing, so `unfinished` fails.
        taken = {
            "containers": {}, "server_issuer": None, "previous_key_ids": [], "acl": {},
            "redis_trusts": os.environ.get("FAKE_REDIS_TRUSTS", "").split(), "app_trusts": [],
        }
        tokens = os.environ.get("FAKE_PREVIOUS_TOKENS") or "0"
        if tokens != "unread":
            taken["api_previous_tokens"] = int(tokens)
        return taken


def recorded_state(stack):
    log.write(f"state of {stack} read\n")
    return rotation_probe.Recorded(images={}, containers={})


rotation_probe.Probe = StandInProbe
rotation_probe.recorded_state = recorded_state
rotation_probe._wait = lambda probe, before, timeout: 0
# `unfinished` is the real one (what rotate.sh decides by); `guard` passes.
_real_of_snapshot = rotation_probe._of_snapshot
rotation_probe._of_snapshot = lambda action, stack, kind, before: (
    _real_of_snapshot(action, stack, kind, before) if action == "unfinished" else 0
)
rotation_probe.report_lines = lambda before, after: []
# `rewrite-aof` (the data-key rotation's last step, `all` runs it) passes.
rotation_probe._rewrite_aof = lambda probe, stack: 0
rotation_probe.restarted = lambda before, after: []
rotation_probe.expected_changes = lambda kind, before, after: []
sys.exit(rotation_probe.main(sys.argv[1:]))
"""


def _rotate_certs(
    tmp_path: Path, *, pulumi_logged_in: bool, snapshot_error: str = ""
) -> tuple[int, str, list[str]]:
    result, calls = _run_rotate_certs(
        tmp_path, pulumi_logged_in=pulumi_logged_in, snapshot_error=snapshot_error
    )
    return result.returncode, result.stderr, calls


def _run_rotate_certs(
    tmp_path: Path,
    *,
    pulumi_logged_in: bool,
    snapshot_error: str = "",
    kind: str = "certs",
    previous_tokens: int | str = 0,
    plan: str = "",
    token_rotation: int = 1,
    redis_trusts: str = "",
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, venv = tmp_path / "bin", tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    scripts = {
        bin_dir / "docker": FAKE_DOCKER,
        bin_dir / "pulumi": FAKE_PULUMI,
        venv / "bin" / "python": FAKE_PYTHON,
    }
    for path, text in scripts.items():
        path.write_text(text)
        path.chmod(0o755)
    shim = tmp_path / "probe_shim.py"
    shim.write_text(PROBE_SHIM)
    log = tmp_path / "calls.log"
    log.touch()
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "rotate.sh"), STACK, kind],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "SECURE_REDIS_VENV": str(venv),
            "REAL_PYTHON": sys.executable,
            "PROBE_SHIM": str(shim),
            "REPO_ROOT": str(REPO_ROOT),
            "FAKE_LOG": str(log),
            "FAKE_PULUMI_LOGGED_IN": "1" if pulumi_logged_in else "0",
            "FAKE_SNAPSHOT_ERROR": snapshot_error,
            "FAKE_PREVIOUS_TOKENS": str(previous_tokens),
            "FAKE_PLAN": plan,
            "FAKE_TOKEN_ROTATION": str(token_rotation),
            "FAKE_REDIS_TRUSTS": redis_trusts,
            "HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, log.read_text().splitlines()


def _probe_runs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m infra.rotation_probe ")]


def test_rotate_sh__with_the_local_applier_every_probe_trusts_what_its_state_records(
    tmp_path: Path,
) -> None:
    code, err, calls = _rotate_certs(tmp_path, pulumi_logged_in=False)
    assert code == 0, err
    assert "python -m infra.apply up --stack dev" in calls
    runs = _probe_runs(calls)
    # snapshot before, whether a CA rollover is unfinished (of that snapshot), then the up's
    # snapshot, guard and wait, then the report
    assert [r.split()[3] for r in runs] == [
        "snapshot", "unfinished", "snapshot", "guard", "wait", "report"
    ]  # fmt: skip
    # `unfinished` judges the snapshot file only: it looks at no container
    looks = [r for r in runs if r.split()[3] != "unfinished"]
    assert all(r.endswith(f"--stack {STACK} --applier-state") for r in looks), runs
    made = [c for c in calls if c.startswith("probe ")]
    # guard, given a snapshot, judges it without a probe; every probe made trusts the state
    assert made == [
        f"probe {action}: trusts the state, can reread: True"
        for action in ("snapshot", "snapshot", "wait", "report")
    ]
    assert calls.count(f"state of {STACK} read") == len(made)


def test_rotate_sh__under_pulumi_up_no_probe_reads_the_applier_state(tmp_path: Path) -> None:
    code, err, calls = _rotate_certs(tmp_path, pulumi_logged_in=True)
    assert code == 0, err
    assert any(c.startswith("pulumi up --yes --non-interactive") for c in calls), calls
    assert not any(c.startswith("python -m infra.apply") for c in calls)
    runs = _probe_runs(calls)
    assert len(runs) == 6
    assert not any("--applier-state" in r for r in runs), runs
    made = [c for c in calls if c.startswith("probe ")]
    assert made == [
        f"probe {action}: trusts labels only, can reread: False"
        for action in ("snapshot", "snapshot", "wait", "report")
    ]
    assert not any(c.startswith("state of ") for c in calls)


def test_rotate_sh__the_way_on_after_a_failed_look_matches_its_cause(tmp_path: Path) -> None:
    """The stack is deployed and its app's API did not answer: rotate.sh had added "Not
    deployed: scripts/setup-secure-redis.sh" to every failed look (found on s90, 2026-12-03).
    The probe, which knows the cause, gives the one way on; rotate.sh says only that nothing
    was changed."""
    code, err, _ = _rotate_certs(
        tmp_path,
        pulumi_logged_in=False,
        snapshot_error="ProbeError:secure-redis-dev-app: python3 exited 1: the app's API "
        "answering GET /security-status failed: TimeoutError: timed out",
    )
    assert code == 1
    assert f"scripts/status.sh {STACK} says what answers" in err
    assert "setup-secure-redis" not in err, err
    assert "nothing was changed by this step" in err


def test_rotate_sh__a_missing_container_is_told_how_to_deploy_or_finish_the_up(
    tmp_path: Path,
) -> None:
    code, err, _ = _rotate_certs(
        tmp_path,
        pulumi_logged_in=False,
        snapshot_error="Missing:secure-redis-dev-app does not exist",
    )
    assert code == 1
    assert (
        "secure-redis-dev-app does not exist. Not deployed: scripts/setup-secure-redis.sh dev"
        in err
    )
    assert f"python -m infra.apply up --stack {STACK}" in err


def test_rotate_sh__a_cause_that_states_its_own_way_gets_no_other(tmp_path: Path) -> None:
    code, err, _ = _rotate_certs(
        tmp_path,
        pulumi_logged_in=False,
        snapshot_error="Stated:secure-redis-dev-redis is paused ...: `docker unpause x`",
    )
    assert code == 1
    assert "setup-secure-redis" not in err
    assert "status.sh" not in err, err


def test_rotate_sh__names_the_looks_around_each_up_and_passes_the_ups_own_lines(
    tmp_path: Path,
) -> None:
    """newuser16 (s45, 2026-12-03): each step spent 25-35 s in the looks before and after its
    up with no line, 75 % of `api-token-retire`. Each look is named before it starts (the
    probe then says every 10 s that it still runs), and the up's own lines pass through."""
    result, _ = _run_rotate_certs(tmp_path, pulumi_logged_in=False)
    assert result.returncode == 0, result.stderr
    order = [
        "rotate: up (renew every leaf certificate) with the local applier",
        "rotate: reading what Redis and the app use before the up",
        "apply: the up's own lines",
        "rotate: waiting until Redis and the app use what the up gave them",
        "rotate: up (renew every leaf certificate) done, every consumer switched",
    ]
    out = result.stdout
    found = [out.find(line) for line in order]
    assert -1 not in found, out
    assert found == sorted(found), out


def test_rotate_sh__api_token_retire_with_nothing_pending_says_so_and_runs_no_up(
    tmp_path: Path,
) -> None:
    """Session 18 (s83, 2026-12-03): with no api-token rotation waiting (the app accepted no
    earlier token) `rotate.sh s83 api-token-retire` ran an up, which applied what else was
    pending (three images replaced, their containers with them), and ended "api-token-retire
    rotated in place". Nothing to retire is said as such, at exit 0 (as teardown.sh's
    "nothing to remove"), and no up runs."""
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=False, kind="api-token-retire")
    assert result.returncode == 0, result.stderr
    assert (
        f"rotate: stack {STACK}: nothing to retire: the app accepts no earlier API token"
        in result.stdout
    )
    assert "rotated in place" not in result.stdout
    # token18: its start line said "rotating api-token-retire in place" before this.
    assert "rotating" not in result.stdout, result.stdout
    assert not any(c.startswith("python -m infra.apply") for c in calls), calls
    assert not [c for c in calls if "infra.stack_config set" in c], "no setting changed"


def test_rotate_sh__api_token_with_a_rotation_pending_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """token18 (2026-12-03): `rotate.sh S api-token` with an earlier rotation waiting for its
    retire raised the generation again; the provider keeps one previous token
    (infra/providers/secrets.py), so the up made the pending token the old one and dropped the
    token before it: its clients got 401 at once, and the run said only "the old one is
    accepted". Refused in one line naming api-token-retire; no setting, no up."""
    result, calls = _run_rotate_certs(
        tmp_path, pulumi_logged_in=False, kind="api-token", previous_tokens=1
    )
    error = _refused_before_any_change(result, calls)
    assert "an API token rotation is still pending" in error
    assert f"scripts/rotate.sh {STACK} api-token-retire" in error
    assert "rotating" not in result.stdout, result.stdout


def _refused_before_any_change(result: subprocess.CompletedProcess[str], calls: list[str]) -> str:
    """The one `rotate: error:` line of a run refused at its first look: exit 1, saying that
    nothing was changed, with no up (no applier command at all) and no setting written."""
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("rotate: error:")]
    assert len(errors) == 1, result.stderr
    assert "nothing was changed" in errors[0]
    assert not any(c.startswith("python -m infra.apply") for c in calls), calls
    assert not [c for c in calls if "infra.stack_config set" in c], "no setting changed"
    return errors[0]


def test_rotate_sh__api_token_with_none_pending_rotates(tmp_path: Path) -> None:
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=False, kind="api-token")
    assert result.returncode == 0, result.stderr
    assert any("infra.stack_config set" in c and "apiTokenRotationGeneration" in c for c in calls)
    assert f"python -m infra.apply up --stack {STACK}" in calls
    assert f"rotate: stack {STACK}: rotating api-token in place" in result.stdout
    assert "rotate: up (API token ROTATE: a new token, the old one still accepted)" in result.stdout


def test_rotate_sh__api_token_retire_with_a_token_pending_retires_it(tmp_path: Path) -> None:
    """The retire raises apiTokenRetireGeneration to apiTokenRotationGeneration before its up:
    the old token is held through every other up until then (infra/providers/secrets.py)."""
    result, calls = _run_rotate_certs(
        tmp_path,
        pulumi_logged_in=False,
        kind="api-token-retire",
        previous_tokens=1,
        token_rotation=7,
    )
    assert result.returncode == 0, result.stderr
    raised = f"python -m infra.stack_config set --stack {STACK} apiTokenRetireGeneration 7"
    assert raised in calls, calls
    assert calls.index(raised) < calls.index(f"python -m infra.apply up --stack {STACK}")
    assert not [c for c in calls if "set" in c and "apiTokenRotationGeneration" in c], calls
    assert "rotate: up (API token SET: the old token retired)" in result.stdout
    assert f"rotate: stack {STACK}: api-token-retire rotated in place" in result.stdout


def _settings_set(calls: list[str]) -> list[str]:
    """KEY VALUE of each setting rotate.sh changed, in order, with an `up` for each up."""
    changes = []
    for call in calls:
        if call.startswith("python -m infra.stack_config set "):
            changes.append(" ".join(call.split()[-2:]))
        elif call.startswith("python -m infra.apply up "):
            changes.append("up")
    return changes


def test_rotate_sh__all_with_a_token_pending_retires_it_first_by_its_own_up(
    tmp_path: Path,
) -> None:
    """`all` rotates the token too, and a rotation on top of a pending one would refuse that
    one at once (the provider refuses it): the pending token is retired first, as
    api-token-retire does, then everything rotates."""
    result, calls = _run_rotate_certs(
        tmp_path, pulumi_logged_in=False, kind="all", previous_tokens=1, token_rotation=4
    )
    assert result.returncode == 0, result.stderr
    changes = _settings_set(calls)
    assert changes[:3] == ["apiTokenRetireGeneration 4", "up", "certRenewalGeneration 2"], changes
    # and at the end, the new rotation and its retire (the stand-in reads 4 again)
    assert changes[-4:] == [
        "apiTokenRotationGeneration 5",
        "up",
        "apiTokenRetireGeneration 4",
        "up",
    ], changes


def test_rotate_sh__all_with_no_token_pending_starts_with_the_certificates(
    tmp_path: Path,
) -> None:
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=False, kind="all")
    assert result.returncode == 0, result.stderr
    assert _settings_set(calls)[0] == "certRenewalGeneration 2"


def test_rotate_sh__api_token_retire_when_asking_what_is_pending_fails__is_no_nothing_to_retire(
    tmp_path: Path,
) -> None:
    """`[ -z "$(unfinished api-token)" ]` took a failed `unfinished` (its output empty, its exit
    status lost in the test) for "nothing pending": exit 0, "nothing to retire", and the old
    token still accepted. Its failure stops rotate.sh, as every other `unfinished` does."""
    result, calls = _run_rotate_certs(
        tmp_path, pulumi_logged_in=False, kind="api-token-retire", previous_tokens="unread"
    )
    assert result.returncode != 0, result.stdout
    assert "nothing to retire" not in result.stdout
    assert not any(c.startswith("python -m infra.apply") for c in calls), calls


# What `plan` printed on s76 (deployed from 062b39e) after the checkout was upgraded to
# a4c121e and its wheelhouse built: the app replaced for its new image and environment.
_APP_REPLACED = (
    f"apply:   replace container secure-redis-{STACK}-app on secure-redis-{STACK}-backend, "
    f"secure-redis-{STACK}-frontend: envs; image; networksAdvanced[1].aliases"
)
_REDIS_REPLACED = (
    f"apply:   replace container secure-redis-{STACK}-redis on secure-redis-{STACK}-backend: envs"
)


@pytest.mark.parametrize("replaced", [_APP_REPLACED, _REDIS_REPLACED])
@pytest.mark.parametrize("kind", ["certs", "all"])
def test_rotate_sh__an_up_that_would_also_replace_redis_or_the_app_is_refused_first(
    tmp_path: Path, replaced: str, kind: str
) -> None:
    """Run right after the checkout was upgraded (docs/day2.md, "Upgrading a deployed stack"),
    rotate.sh's up replaced the app with the new image: requests failed for 14.7 s on s76 and
    the report said "(not by rotate.sh)". Now it stops before any setting or up, with the up
    to run first."""
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=False, kind=kind, plan=replaced)
    assert result.returncode == 1, result.stdout
    assert f"python -m infra.apply plan --stack {STACK}" in calls
    assert not any("infra.stack_config set" in c or "infra.apply up" in c for c in calls), calls
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert replaced.removeprefix("apply:").strip() in line, line
    assert f"python -m infra.apply up --stack {STACK}" in line, line
    assert line.endswith("nothing was changed"), line
    assert "rotated in place" not in result.stdout
    # Its start line said "rotating certs in place" before this refusal (2026-12-04).
    assert "rotating" not in result.stdout, result.stdout


@pytest.mark.parametrize(
    "plan",
    [
        "apply: plan: 37 unchanged",
        # the exporter or the rotation pass carry no client's request
        f"apply:   replace container secure-redis-{STACK}-redis-exporter on x: image",
        f"apply:   replace container secure-redis-{STACK}-rotation on x: image",
        f"apply:   re-run  initialiser secure-redis-{STACK}-redis-init (writes ...): uploads",
    ],
)
def test_rotate_sh__other_pending_changes_do_not_stop_a_rotation(tmp_path: Path, plan: str) -> None:
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=False, plan=plan)
    assert result.returncode == 0, result.stderr
    assert f"python -m infra.apply up --stack {STACK}" in calls


def test_rotate_sh__under_pulumi_up_no_applier_plan_is_asked(tmp_path: Path) -> None:
    result, calls = _run_rotate_certs(tmp_path, pulumi_logged_in=True, plan=_APP_REPLACED)
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("python -m infra.apply") for c in calls), calls


@pytest.mark.parametrize("kind", ["certs", "passwords", "data-key", "api-token", "all"])
def test_rotate_sh__another_kind_during_an_unfinished_ca_rollover_is_refused(
    tmp_path: Path, kind: str
) -> None:
    """Every up takes a half-done CA rollover's next step: `certs` took it unasked (walkthrough
    of 2026-12-06), and on top of an interrupted introduce its reload failed."""
    result, calls = _run_rotate_certs(
        tmp_path, pulumi_logged_in=False, kind=kind, redis_trusts="1a 2b"
    )
    error = _refused_before_any_change(result, calls)
    assert "a CA rollover is unfinished (two CAs are trusted" in error
    assert f"scripts/rotate.sh {STACK} ca" in error


def test_rotate_sh__ca_during_an_unfinished_ca_rollover_finishes_it(tmp_path: Path) -> None:
    result, _ = _run_rotate_certs(tmp_path, pulumi_logged_in=False, kind="ca", redis_trusts="1a 2b")
    assert "a CA rollover is unfinished" not in result.stderr
    assert "finishing it instead of starting another" in result.stderr
