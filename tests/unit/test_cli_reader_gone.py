"""A reader that goes away (`... | head -1`) ends a command's output quietly (README, "Exit
codes"): no BrokenPipeError traceback, and the command's own exit status.

Found following the documents on stack s54 (docs pass of 2026-12-03):
`python -m infra.firewall show --stack s54 | head -5` (docs/deploy.md) and
`python -m infra.engine_report | head -3` (README) ended in a traceback; so did
`infra.stack_config get` and `policies.strictness`. Then (session 18, 2026-12-03)
`python -m infra.wheelhouse | head` (scripts/build-app-image.sh's digest), and the sweep of
every other `python -m` entry point and script that prints found the same in
`infra.rotation_probe`'s report, snapshot and unfinished lines, the build lock's `--help`,
`secure_cache.redis_exporter scrape`, scripts/wheel_hashes.py, security_summary.py,
stack_status.py and bench.py, and `tests.e2e.stacks` and `tests.e2e.walk`; `secure-cache
rotate` exited 0 instead of its own 3 or 7. Each prints through secure_cache.cli_parser `say`
now. Each command runs here with the read end of its stdout closed before it starts, so its
first line already meets a gone reader; what it would need (an engine, a stack, Redis) is a
stand-in, set up by the `-c` program before its `main` runs.

Not here: `python -m policies` (the policy pack's analyzer: it prints its port for the Pulumi
engine that started it, and a gone reader is a gone engine), and the commands that print on
stderr only (`python -m infra`, `secure_cache.exporter_health`). `infra.apply` prints through
`say` (tests/unit/test_applier_cli.py runs `plan` so); `infra.preview` and `policies.check`
end their output with `reader_gone` and are run here too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.entry_points import assert_quiet_without_a_reader
from tests.support.rotation_snapshots import snapshot

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
# The probe's report of a stack that looks the same before and after: the lines, then exit 0.
_REPORT = (
    "import json, sys, infra.rotation_probe as r; "
    "taken = json.load(open(sys.argv[1])); "
    "r.Probe = lambda *a, **k: type('P', (), {'snapshot': lambda self: taken})(); "
    "sys.exit(r.main(['report', '--stack', 'dev', '--before', sys.argv[1], "
    "'--kind', 'api-token-retire']))"
)
# The exporter's one scrape, of a Redis that answers (exit 0 needs `redis_up 1.0`).
_SCRAPE = (
    "import sys, types, secure_cache.redis_exporter as e; "
    "settings = types.SimpleNamespace(passwords_rotating_file=None, "
    "certificate_files=lambda: []); "
    "e.ExporterSettings.from_env = staticmethod(lambda: settings); "
    "e.connect = lambda s: None; e.probe_target = lambda s: None; "
    "e.TlsPolicyProbe = lambda t: types.SimpleNamespace(refresh=lambda: None); "
    "e.registry_for = lambda *a: None; "
    "e.generate_latest = lambda r: b'# TYPE redis_up gauge\\nredis_up 1.0\\n' * 500; "
    "sys.exit(e.main(['scrape']))"
)
# `secure-cache rotate`: a pass that left entries (exit 3, EXIT_INCOMPLETE), its report first.
_ROTATE = (
    "import sys, secure_cache.__main__ as m, secure_cache.client as c; "
    "from secure_cache.core import RotationReport; "
    "cache = type('Cache', (), {'__enter__': lambda s: s, '__exit__': lambda s, *a: None, "
    "'rotate': lambda s, **k: RotationReport(scanned=5, remaining=2)})(); "
    "c.SecureCache.from_env = staticmethod(lambda: cache); "
    "sys.argv = ['secure-cache', 'rotate']; sys.exit(m.run())"
)
_BENCH = (
    "import contextlib, sys; sys.path.insert(0, 'scripts'); import bench; "
    "bench.tls_server = contextlib.nullcontext; bench.measure_sizes = lambda *a: {}; "
    "bench.goals = lambda summary: []; "
    "sys.exit(bench.main(['--only', 'sizes', '--placement', 'free']))"
)
_PROBE = ("-m", "infra.rotation_probe")
_WALK = (
    "import sys, tests.e2e.walk as w; "
    "w.walk = lambda stack, steps, seed, say: [say(f'step {n}') for n in range(3)] and []; "
    "sys.exit(w.main(['--stack', 'dev', '--steps', '3', '--seed', '1']))"
)


def _snapshot_file(tmp: Path) -> str:
    """A snapshot as `infra.rotation_probe snapshot` writes it, with a rotation half done (so
    `unfinished` has lines to print)."""
    taken = snapshot(
        redis_trusts=["CA1", "CA2"],
        app_trusts=["CA1", "CA2"],
        acl={"default": [], "app": ["p1", "p2"]},
        primary_key_id="k2",
        previous_key_ids=["k1"],
    )
    path = tmp / "before.json"
    path.write_text(json.dumps(taken))
    return str(path)


def _wheel_hashes(tmp: Path) -> list[str]:
    wheels = tmp / "wheelhouse"
    wheels.mkdir()
    (wheels / "secure_cache-1.0-py3-none-any.whl").write_bytes(b"a wheel")
    (tmp / "requirements.txt").write_text("")
    script = str(REPO_ROOT / "scripts" / "wheel_hashes.py")
    return [script, str(wheels), str(tmp / "requirements.txt"), "secure_cache"]


def _summary(tmp: Path) -> list[str]:
    areas = [{"title": f"area {n}", "passed": 3, "failed": 0, "skipped": 0} for n in range(50)]
    (tmp / "summary.json").write_text(json.dumps({"areas": areas}))
    return [str(REPO_ROOT / "scripts" / "security_summary.py"), str(tmp / "summary.json")]


# Each command's arguments to the interpreter (given a scratch directory), and its own exit
# status with a reader (the same without one).
COMMANDS: dict[str, tuple[Callable[[Path], list[str]], int]] = {
    "infra.firewall show": (lambda _: ["-c", _FIREWALL], 0),
    "infra.engine_report": (lambda _: ["-c", _ENGINE], 0),
    "infra.stack_config get": (
        lambda _: ["-m", "infra.stack_config", "get", "--stack", "dev", "appHostPort"],
        0,
    ),
    "policies.strictness": (lambda _: ["-m", "policies.strictness", "--stack", "dev"], 0),
    "policies.check": (lambda _: ["-m", "policies.check", "--stack", "dev"], 0),
    "infra.preview": (lambda _: ["-m", "infra.preview", "--stack", "dev"], 0),
    "infra.wheelhouse": (lambda _: ["-m", "infra.wheelhouse"], 0),
    "infra.applier.build_lock --help": (lambda _: ["-m", "infra.applier.build_lock", "-h"], 0),
    "infra.rotation_probe unfinished": (
        lambda tmp: [*_PROBE, "unfinished", "--stack", "dev", "--before", _snapshot_file(tmp)],
        0,
    ),
    "infra.rotation_probe report": (lambda tmp: ["-c", _REPORT, _snapshot_file(tmp)], 0),
    "secure_cache.redis_exporter scrape": (lambda _: ["-c", _SCRAPE], 0),
    "secure-cache rotate": (lambda _: ["-c", _ROTATE], 3),
    "scripts/wheel_hashes.py": (_wheel_hashes, 0),
    "scripts/security_summary.py": (_summary, 0),
    "scripts/stack_status.py --consumers": (
        lambda _: [str(REPO_ROOT / "scripts" / "stack_status.py"), "--consumers"],
        0,
    ),
    "scripts/bench.py": (lambda _: ["-c", _BENCH], 0),
    "tests.e2e.stacks --help": (lambda _: ["-m", "tests.e2e.stacks", "--help"], 0),
    "tests.e2e.walk": (lambda _: ["-c", _WALK], 0),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_reader_that_goes_away_ends_the_output_quietly(name: str, tmp_path: Path) -> None:
    arguments, code = COMMANDS[name]
    assert_quiet_without_a_reader([sys.executable, *arguments(tmp_path)], REPO_ROOT, code=code)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_with_a_reader_the_command_prints(name: str, tmp_path: Path) -> None:
    """Positive control: the stand-ins work and each command has output to lose."""
    arguments, code = COMMANDS[name]
    done = subprocess.run(
        [sys.executable, *arguments(tmp_path)],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    assert done.stdout.strip()
