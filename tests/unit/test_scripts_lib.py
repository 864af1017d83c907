"""scripts/lib.sh: the shared shell helpers, run for real with bash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

LIB = REPO_ROOT / "scripts" / "lib.sh"


def _bash(snippet: str, *args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}"; {snippet}', "-", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "python_only"),
    [
        (["-m", "unit"], True),
        (["-m", "unit or policy", "-x"], True),
        (["-munit"], True),
        (["tests/unit/test_pki.py", "-q"], True),
        (["--maxfail=1", "tests/policy"], True),
        (["--maxfail=1"], False),  # contains "-m" as a substring: not a marker option
        (["-m", "integration"], False),
        (["-m", "not e2e"], False),
        (["-m", "e2e"], False),
        (["tests/integration"], False),
        (["tests/unit", "tests/e2e/test_e2e_tls.py"], False),
        (["-k", "pki"], False),
        (["-m"], False),
        (["-m", "unit or policy", "-n", "2", "-p", "no:cacheprovider"], True),
        (["-n", "2", "tests/unit"], True),
        (["-k", "pki", "tests/e2e/test_e2e_tls.py"], False),
        (["-n", "2", "other/test_x.py"], False),
    ],
)
def test_python_only__reads_the_arguments_one_by_one(args: list[str], python_only: bool) -> None:
    assert (_bash('python_only "$@"', *args).returncode == 0) is python_only


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (["-m"], "-m"),
        (["-x", "-m"], "-m"),
        (["-m", "-x"], "-m"),  # pytest takes no option as -m's value either
        (["tests/e2e", "--stack"], "--stack"),
        (["-k"], "-k"),
        (["-m", "unit"], ""),
        (["-munit", "-k", "pki"], ""),
        (["-m", "e2e and not fault", "-n", "2", "--dist", "loadfile"], ""),
        (["--maxfail=1", "-x"], ""),
        ([], ""),
    ],
)
def test_missing_option_value__names_the_option_left_without_its_value(
    args: list[str], missing: str
) -> None:
    done = _bash('missing_option_value "$@"', *args)
    assert done.stdout == missing
    assert (done.returncode == 0) is bool(missing)


def test_step__times_a_stage_and_stops_on_failure() -> None:
    ok = _bash("step greet echo hello")
    assert ok.returncode == 0
    assert ok.stdout.splitlines()[0:2] == ["secure-redis: == greet", "hello"]
    assert "-- greet done" in ok.stdout
    failed = _bash("set -e; step broken false; echo after")
    assert failed.returncode == 1
    assert "after" not in failed.stdout


def test_start_detached__the_background_process_inherits_no_lock(tmp_path: Path) -> None:
    """bootstrap.sh starts dockerd with start_detached. Run under `flock LOCK ...`, a plain
    `setsid nohup dockerd &` inherited the lock's descriptor, and the engine held the shared
    Docker lock for as long as it ran: every later `flock` waited forever."""
    lock = tmp_path / "docker.lock"
    lock.touch()
    pid_file = tmp_path / "pid"
    started = subprocess.run(
        [
            "flock", str(lock), "bash", "-c",
            f'source "{LIB}"; start_detached /dev/null sleep 30; echo $! > "{pid_file}"',
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = int(pid_file.read_text())
    try:
        assert Path(f"/proc/{pid}").exists(), "positive control: the detached process runs"
        free = subprocess.run(["flock", "-n", str(lock), "true"], timeout=10, check=False)
        assert free.returncode == 0, "the detached process still holds the lock"
    finally:
        os.kill(pid, signal.SIGKILL)


# A stand-in for a pytest run under scripts/test.sh: it starts a child of its own (rotate.sh,
# an `infra.apply up`) and, interrupted, tears down (pytest's fixtures) before it exits. The
# child's pid, which tells the test it may signal, is written inside the `try`: written before
# it, a SIGINT that reached a stand-in starved before its `try` skipped the teardown (shown by
# freezing it there with SIGSTOP; these tests failed in CI at load 13-16).
_WORKER = """
import subprocess, sys, time
from pathlib import Path
out = Path(sys.argv[1])
child = subprocess.Popen(["sleep", "300"])
try:
    (out / "grandchild").write_text(str(child.pid))
    time.sleep(300)
except KeyboardInterrupt:
    (out / "torn-down").write_text("yes")
    raise
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _run_and_stop_group(
    tmp_path: Path, leader: str, grace_s: int
) -> tuple[subprocess.CompletedProcess[str], int]:
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    snippet = f"""
        leader() {{ {leader} "{worker}" "{tmp_path}"; }}
        start_group leader
        group=$!
        while [ ! -s "{tmp_path}/grandchild" ]; do sleep 0.05; done
        STOP_GROUP_GRACE_S={grace_s} stop_group "$group"
        echo stopped
    """
    done = _bash(snippet, timeout_s=3 * grace_s + 60)
    return done, int((tmp_path / "grandchild").read_text())


def test_stop_group__ends_what_the_group_started_not_only_its_leader(tmp_path: Path) -> None:
    """scripts/test.sh runs prod's fault tests in the background. Interrupted, it stopped only
    that pytest (pkill -P of the background shell): what the tests had started (rotate.sh, an
    `infra.apply up` against prod) ran on while the exit handler removed the stack. The
    stand-in's own child is what must not outlive stop_group; the stand-in tears down first.
    The grace before SIGTERM is 30 s, test.sh's default: with 2 s, a stand-in starved that long
    (frozen 5 s with SIGSTOP as its teardown began) was terminated before it could tear down,
    and the test failed although stop_group had done its job (SIGINT first)."""
    done, grandchild = _run_and_stop_group(tmp_path, sys.executable, grace_s=30)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "stopped"
        assert not _alive(grandchild), "the group's grandchild outlived stop_group"
        assert (tmp_path / "torn-down").read_text() == "yes", "SIGINT first: pytest tears down"
    finally:
        if _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_stop_group__what_ignores_sigint_is_terminated(tmp_path: Path) -> None:
    """A group started with SIGINT ignored (test.sh itself run in the background of a
    non-interactive shell) still ends: SIGTERM after the grace."""
    done, grandchild = _run_and_stop_group(tmp_path, f"trap '' INT; {sys.executable}", grace_s=2)
    try:
        assert done.returncode == 0, done.stderr
        assert not _alive(grandchild), "the group's grandchild outlived stop_group"
        assert not (tmp_path / "torn-down").exists()
    finally:
        if _alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


@pytest.mark.parametrize("stack", ["s45", "u10", "staging"])
def test_fault_tests_hint__a_stack_of_ones_own_is_warned_that_test_sh_takes_dev_and_prod(
    stack: str,
) -> None:
    # Found on s45 (2026-12-03): the setup summary's last hint said, for any stack,
    # "with dev+prod isolation: scripts/test.sh -m e2e (deploys dev and prod)". On a host
    # shared with other stacks (Quick start's reason for a stack of one's own) dev and prod
    # may be running and someone else's: the session uses them as they are, and its fault
    # tests stop and restart their Redis and app.
    result = _bash('fault_tests_hint "$1"', stack)
    assert result.returncode == 0, result.stderr
    assert f"scripts/setup-secure-redis.sh {stack} --full" in result.stdout
    assert "deploys dev and prod" not in result.stdout
    assert "not on a host where others use them" in result.stdout


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_fault_tests_hint__dev_and_prod_name_the_isolation_tests(stack: str) -> None:
    result = _bash('fault_tests_hint "$1"', stack)
    assert result.returncode == 0, result.stderr
    assert f"scripts/setup-secure-redis.sh {stack} --full" in result.stdout
    assert "with dev+prod isolation: scripts/test.sh -m e2e" in result.stdout


def test_drift_hint__only_where_this_checkouts_applier_deployed_the_stack(tmp_path: Path) -> None:
    (tmp_path / ".secure-redis" / "state").mkdir(parents=True)
    (tmp_path / ".secure-redis" / "state" / "s48.state").write_bytes(b"sealed")
    here = _bash('ROOT="$1"; drift_hint s48', str(tmp_path))
    assert here.returncode == 0, here.stderr
    assert here.stdout.endswith(": python -m infra.apply status --stack s48\n")
    assert here.stdout.count("\n") == 1
    elsewhere = _bash('ROOT="$1"; drift_hint s49', str(tmp_path))
    assert (elsewhere.returncode, elsewhere.stdout, elsewhere.stderr) == (0, "", "")
