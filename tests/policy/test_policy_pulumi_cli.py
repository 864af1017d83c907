"""Every Pulumi CLI call the scripts make uses flags the CLI documents, and `pulumi up` gets the
policy config of the environment the stack declares.

A recording stand-in `pulumi` (`tests/policy/pulumi_standin/pulumi`) goes first on PATH; it
checks each invocation against `tests/policy/pulumi_cli_flags.json` (the CLI's own command
reference) and logs it. The teardown test also puts a stand-in `docker` on PATH and points
DOCKER_HOST at a socket that does not exist, so no real engine is touched, and a stand-in
`iptables` that lists no rule and changes none, so no real host firewall rule is removed (as
root, teardown.sh's firewall step removed those of the e2e stack `dev` that scripts/test.sh
deploys while this layer runs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from policies.strictness import CONFIG_DIR

pytestmark = pytest.mark.policy

ROOT = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).resolve().parent / "pulumi_standin"


def _run(script: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:  # type: ignore[type-arg]
    log = tmp_path / "pulumi-calls.jsonl"
    env = {
        **os.environ,
        "PATH": f"{STANDIN}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_STANDIN_LOG": str(log),
        "IPTABLES_STANDIN_LOG": str(tmp_path / "iptables-calls.txt"),
        "DOCKER_HOST": f"unix:///nonexistent/{uuid.uuid4().hex}.sock",
    }
    done = subprocess.run(
        script, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


@pytest.mark.parametrize(("stack", "config"), [("dev", "dev.json"), ("prod", "prod.json")])
def test_setup_pulumi_branch__documented_flags_and_the_environments_policy_config(
    tmp_path: Path, stack: str, config: str
) -> None:
    done, calls = _run(["scripts/pulumi-deploy.sh", stack], tmp_path)
    assert done.returncode == 0, done.stderr
    assert [c["error"] for c in calls] == ["", ""]
    assert calls[0]["argv"] == ["stack", "select", stack, "--non-interactive"]
    assert calls[1]["argv"] == [
        "up", "--yes", "--non-interactive", "--skip-preview", "--policy-pack", "policies",
        "--policy-pack-config", str(CONFIG_DIR / config), "--stack", stack,
    ]  # fmt: skip


def test_teardown__pulumi_calls_use_documented_flags(tmp_path: Path) -> None:
    done, calls = _run(["scripts/teardown.sh", "dev"], tmp_path)
    if os.geteuid() == 0:  # without root infra.firewall runs no iptables at all
        log = tmp_path / "iptables-calls.txt"
        iptables = log.read_text().splitlines() if log.exists() else []
        assert iptables, "the firewall step ran the stand-in iptables, not the host's"
        assert all(call.startswith("-w -S ") for call in iptables), iptables
    assert [c["argv"][0] for c in calls] == ["whoami", "stack", "destroy"], done.stderr
    assert all(c["error"] == "" for c in calls), calls
    assert calls[2]["argv"] == [
        "destroy",
        "--yes",
        "--non-interactive",
        "--skip-preview",
        "--stack",
        "dev",
    ]


def _standin(tmp_path: Path, argv: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the stand-in CLI (tests/policy/pulumi_standin) on `argv`; its call log beside."""
    log = tmp_path / "calls.jsonl"
    done = subprocess.run(
        [sys.executable, str(STANDIN / "pulumi"), *argv],
        env={**os.environ, "PULUMI_STANDIN_LOG": str(log)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return done, log


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--policy-pack-configs", "x.json"],
        ["stack", "select", "dev", "--yes"],
        ["destroy", "--policy-pack", "policies"],
        ["deploy"],
    ],
    ids=["misspelt-flag", "flag-of-another-command", "up-only-flag-on-destroy", "no-such-command"],
)
def test_standin__rejects_what_the_cli_would_reject(tmp_path: Path, argv: list[str]) -> None:
    """Positive control: the stand-in is not a rubber stamp."""
    done, log = _standin(tmp_path, argv)
    assert done.returncode == 2
    assert json.loads(log.read_text())["error"] in done.stderr


_SHELL_STOP = {"||", "&&", "|", ";", ")", ">", ">>", "2>&1", ">/dev/null", "then", "do"}


def _pulumi_calls(script: Path) -> list[list[str]]:
    """Each `pulumi ...` call of a script as argv: quoted words become X, continuations join."""
    text = script.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        words = re.sub(r'"[^"]*"', "X", line).split()
        for i, word in enumerate(words):
            if word != "pulumi" or i + 1 >= len(words) or words[i - 1] in ("have", "log"):
                continue
            argv = []
            for arg in words[i + 1 :]:
                if arg in _SHELL_STOP or arg.startswith((">", "2>")):
                    break
                argv.append(arg)
            calls.append(argv)
    return calls


SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
CALLS = [(s.name, argv) for s in SCRIPTS for argv in _pulumi_calls(s)]


@pytest.mark.parametrize(("script", "argv"), CALLS, ids=[f"{s}:{a[0]}" for s, a in CALLS])
def test_every_pulumi_call_written_in_a_script__uses_documented_flags(
    tmp_path: Path, script: str, argv: list[str]
) -> None:
    """Static complement (covers calls a test cannot reach, and rotate.sh when it exists)."""
    done, _ = _standin(tmp_path, argv)
    assert done.returncode == 0, f"{script}: pulumi {' '.join(argv)}: {done.stderr}"


def test_every_pulumi_call_in_the_scripts__is_exercised_above() -> None:
    """A new `pulumi <command>` in a script must be added to the tests above."""
    exercised = {"whoami", "stack select", "up", "destroy"}
    found = set()
    for script in (ROOT / "scripts").glob("*.sh"):
        for line in script.read_text().splitlines():
            stripped = re.sub(r'"[^"]*"', '""', line.strip())  # messages are not calls
            if stripped.startswith("#"):
                continue
            for part in stripped.split("pulumi ")[1:]:
                words = part.split()
                if not words or words[0].startswith(("-", "up`", "--")):
                    continue
                command = " ".join(words[:2]) if words[0] == "stack" else words[0]
                if command.isidentifier() or command == "stack select":
                    found.add(command)
    # rotate.sh's `pulumi config set` and `pulumi up` run through this stand-in on a deployed
    # stack in tests/e2e/test_e2e_rotate_pulumi_cli.py (a run needs a stack to wait on).
    exercised_on_a_stack = {"config"}
    assert found <= exercised | exercised_on_a_stack | {"login", "stack init"}, found - exercised


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ("Dev", "'Dev' is not a stack name: 1-31 lowercase letters"),
        ("--stack", "'--stack' is not a stack name: 1-31 lowercase letters"),
        ("staging-eu", "no stack 'staging-eu': Pulumi.staging-eu.yaml does not exist"),
    ],
    ids=["capital", "an-option", "no-stack-file"],
)
def test_pulumi_deploy__a_bad_stack_is_one_line_before_any_pulumi_call(
    tmp_path: Path, stack: str, message: str
) -> None:
    done, calls = _run(["scripts/pulumi-deploy.sh", stack], tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"setup: error: {message}")
    # dev and prod, and any other stack file of this checkout (a user's third stack, or a
    # test's throwaway one: tests/unit/test_infra_stack_files.py writes one for a moment).
    listed = re.search(r"\(stacks: ([^)]*)\)$", line)
    assert listed is not None, line
    assert {"dev", "prod"} <= set(listed.group(1).split()), line
    assert calls == []
