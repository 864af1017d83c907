"""A reader that goes away (`... | head -1`) ends a command's output quietly (README, "Exit
codes"): no BrokenPipeError traceback, and the command's own exit status.

Found following the documents on stack s54 (docs pass of 2026-12-03):
`python -m infra.firewall show --stack s54 | head -5` (docs/deploy.md) and
`python -m infra.engine_report | head -3` (README) ended in a traceback; so did
`infra.stack_config get` and `policies.strictness`. Each command runs here with the read end of
its stdout closed before it starts, so its first line already meets a gone reader; the engine
the two first need is a stand-in, set up by the `-c` program before `main` runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.entry_points import assert_quiet_without_a_reader

REPO_ROOT = Path(__file__).resolve().parents[2]

_FIREWALL = (
    "import sys, infra.firewall as f; "
    "f.stack_bridges = lambda stack: f.Bridges(backend='sr-dev-b', frontend='sr-dev-f'); "
    "sys.exit(f.main(['show', '--stack', 'dev']))"
)
_ENGINE = (
    "import sys, docker, infra.engine_report as e; "
    "info = {'ServerVersion': '20.10.24', 'SecurityOptions': [], 'LiveRestoreEnabled': True}; "
    "docker.from_env = lambda: type('Engine', (), {'info': lambda self: info})(); "
    "sys.exit(e.main([]))"
)
COMMANDS = {
    "infra.firewall show": ["-c", _FIREWALL],
    "infra.engine_report": ["-c", _ENGINE],
    "infra.stack_config get": ["-m", "infra.stack_config", "get", "--stack", "dev", "appHostPort"],
    "policies.strictness": ["-m", "policies.strictness", "--stack", "dev"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_reader_that_goes_away_ends_the_output_quietly(name: str) -> None:
    assert_quiet_without_a_reader([sys.executable, *COMMANDS[name]], REPO_ROOT)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_with_a_reader_the_command_prints(name: str) -> None:
    """Positive control: the stand-ins work and each command has output to lose."""
    done = subprocess.run(
        [sys.executable, *COMMANDS[name]],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
