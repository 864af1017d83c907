"""Values the shell scripts do arithmetic on, and names they echo: bash arithmetic evaluates
its operands as expressions, so an array subscript in one runs a command substitution
(`a[$(touch FILE)]`), and shellcheck does not see it. scripts/lib.sh's whole_number is the
check; shown cuts a long name as infra.settings.quoted does."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT

LIB = REPO_ROOT / "scripts" / "lib.sh"


def _bash(
    snippet: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}"; {snippet}', "-", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _injection(tmp_path: Path) -> tuple[str, Path]:
    marker = tmp_path / "ran"
    return f"a[$(touch {marker})]", marker


@pytest.mark.parametrize(
    ("value", "whole"),
    [
        ("0", True),
        ("30", True),
        ("123456789", True),
        ("", False),
        ("010", False),  # octal to bash arithmetic: 8
        ("08", False),  # an error to bash arithmetic
        ("-1", False),
        ("+5", False),
        ("1_0", False),
        ("1e3", False),
        ("30 ", False),
        ("\uff13\uff10", False),  # fullwidth 30
        ("1234567890", False),
        ("a[$(id)]", False),
    ],
)
def test_whole_number__only_plain_ascii_decimals(value: str, whole: bool) -> None:
    assert (_bash('whole_number "$1"', value).returncode == 0) is whole


def test_stop_group__a_grace_with_a_command_substitution_runs_nothing(tmp_path: Path) -> None:
    value, marker = _injection(tmp_path)
    done = _bash(
        'set -m; sleep 30 & pid=$!; STOP_GROUP_GRACE_S="$1" stop_group "$pid"; echo stopped', value
    )
    assert not marker.exists(), "bash arithmetic ran the command in STOP_GROUP_GRACE_S"
    assert done.stdout.strip() == "stopped"
    assert "STOP_GROUP_GRACE_S=" in done.stderr
    assert "30 used" in done.stderr


def test_test_sh__refuses_a_grace_that_is_not_a_number_before_anything(tmp_path: Path) -> None:
    value, marker = _injection(tmp_path)
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "test.sh"), "-m", "unit"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "STOP_GROUP_GRACE_S": value},
    )
    assert done.returncode == 1
    assert not marker.exists()
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("test: error: STOP_GROUP_GRACE_S=")
    assert "is not a whole number of seconds" in lines[0]
    assert done.stdout == ""  # not even the bootstrap step began


_STUB_PYTHON = """#!/bin/sh
# rotate.sh's interpreter, stubbed: the probe answers, stack_config get prints the file's value.
case "$2" in
    infra.stack_config)
        [ "$3" = get ] && { cat "$(dirname "$0")/value"; exit 0; }
        echo "$*" >>"$(dirname "$0")/sets"; exit 0 ;;
    infra.rotation_probe) exit 0 ;;
    # The stack's lock for the whole run (infra/rotation_lock.py), handed over at once.
    infra.rotation_lock) lock="$4:stand-in"; shift 7; SECURE_REDIS_STACK_LOCK="$lock" exec "$@" ;;
esac
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("value", ["a[$(touch {marker})]", "010", "08", "1_0"])
def test_rotate_sh__a_generation_that_is_not_a_plain_number_is_refused(
    tmp_path: Path, value: str
) -> None:
    """The settings loader takes what int() takes; rotate.sh's `$((current + 1))` must not."""
    marker = tmp_path / "ran"
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("rotate.sh", "lib.sh"):
        shutil.copy2(REPO_ROOT / "scripts" / name, checkout / "scripts" / name)
    (checkout / "Pulumi.t1.yaml").write_text("config: {}\n")
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    _executable(venv / "python", _STUB_PYTHON)
    (venv / "value").write_text(value.format(marker=marker) + "\n")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _executable(stubs / "docker", "#!/bin/sh\nexit 0\n")
    done = subprocess.run(
        [str(checkout / "scripts" / "rotate.sh"), "t1", "certs"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "SECURE_REDIS_VENV": str(tmp_path / "venv"),
            "PATH": f"{stubs}:/usr/bin:/bin",
        },
    )
    assert not marker.exists(), "bash arithmetic ran the command in the setting's value"
    assert done.returncode == 1
    assert "secure-redis:certRenewalGeneration of stack t1 is" in done.stderr
    assert "not a plain whole number" in done.stderr
    assert not (venv / "sets").exists(), "a value was written"


def test_shown__cuts_a_long_name_and_says_its_length() -> None:
    shown = _bash('shown "$1"', "a" * 5000).stdout
    assert shown == "'" + "a" * 60 + "'... (5000 characters)"


def test_shown__escapes_then_cuts() -> None:
    shown = _bash('shown "$1"', "\x1b[2J" + "b" * 100).stdout
    assert "\x1b" not in shown
    assert shown.endswith("... (104 characters)")
    assert len(shown) < 100


def test_shown__a_short_name_is_as_before() -> None:
    assert _bash('shown "$1"', "dev").stdout == "'dev'"
    assert _bash('shown "$1"', "a\nb").stdout == "$'a\\nb'"


def test_shown__path_is_not_cut() -> None:
    path = "/x" * 3000
    assert _bash('shown "$1" 0', path).stdout == f"'{path}'"


@pytest.mark.parametrize(
    "script", ["teardown.sh", "status.sh", "setup-secure-redis.sh", "rotate.sh", "pulumi-deploy.sh"]
)
def test_scripts__a_5000_character_stack_name_is_cut(script: str) -> None:
    name = "a" * 5000
    args = [name, "certs"] if script == "rotate.sh" else [name]
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "a" * 61 not in done.stdout + done.stderr
    assert "(5000 characters)" in done.stderr
