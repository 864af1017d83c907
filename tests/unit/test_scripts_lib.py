"""scripts/lib.sh: the shared shell helpers, run for real with bash."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

LIB = REPO_ROOT / "scripts" / "lib.sh"


def _bash(snippet: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}"; {snippet}', "-", *args],
        capture_output=True,
        text=True,
        timeout=30,
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
