"""What infra/rotation_probe.py (scripts/rotate.sh) and the local applier's `up` quote of a
container (an exec's output, a job's or a service's log lines) reaches the operator's terminal
without control characters (infra/cli.py printable): a
taken-over container could otherwise write terminal escapes there (a window title, a cleared
screen, a clipboard write: OSC 52). Attack pass of 2026-12-03 (docs/attack-surface.md); the
same for scripts/status.sh in tests/unit/test_status_script.py."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from infra import docker_exec
from infra.applier.engine import LocalApplier
from infra.cli import printable
from infra.rotation_probe import Probe, ProbeError

ESCAPES = "Oops\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBwd25lZA==\x07\r"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class _Container:
    def __init__(self, output: bytes) -> None:
        self.output = output
        self.attrs = {"State": {"StartedAt": "t0", "FinishedAt": "t1", "ExitCode": 1}}

    def exec_run(self, _argv: list[str], demux: bool = False) -> tuple[int, bytes]:
        return 1, self.output

    def logs(self, **_: Any) -> bytes:
        return self.output + b"\nsecond line"


@pytest.fixture(autouse=True)
def _exec_through_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe._exec runs infra.docker_exec.exec_run(container, argv): here, the fake's own."""
    monkeypatch.setattr(
        docker_exec, "exec_run", lambda c, argv: docker_exec.ExecResult(*c.exec_run(argv))
    )


def _probe(output: bytes) -> Probe:
    probe = Probe.__new__(Probe)
    probe.stack = "s1"
    container = _Container(output)
    probe.client = SimpleNamespace(containers=SimpleNamespace(get=lambda _name: container))
    return probe


def test_a_failed_exec_quotes_the_containers_output_escaped() -> None:
    with pytest.raises(ProbeError) as raised:
        _probe(ESCAPES.encode())._exec("secure-redis-s1-app", ["python3", "-c", "x"])
    message = str(raised.value)
    assert "python3 exited 1: Oops" in message, "positive control: the output is quoted"
    assert not CONTROL.search(message), repr(message)
    assert "\\x1b]52;c;" in message


def test_the_reload_evidence_quotes_the_jobs_log_escaped() -> None:
    lines = _probe(ESCAPES.encode()).reload_evidence()
    assert len(lines) == 2
    assert all("log: Oops" in line for line in lines), lines
    assert not any(CONTROL.search(line) for line in lines), lines


def test_printable_keeps_printable_text_as_it_is() -> None:
    assert printable("certificate 0A1B served, état ok") == "certificate 0A1B served, état ok"
    assert printable("a\tb\x9bc") == "a\\tb\\x9bc"


def test_the_applier_quotes_a_failed_containers_log_escaped_line_by_line() -> None:
    """`up` shows the last log lines of a container that did not start or turn healthy."""
    applier = LocalApplier.__new__(LocalApplier)
    applier.api = SimpleNamespace(logs=lambda _cid, tail: (ESCAPES + "\nevent=next").encode())
    shown = applier._tail("cid")
    assert shown.startswith("; its last log lines:\nOops"), "positive control: the log is quoted"
    assert shown.endswith("\\r\nevent=next"), repr(shown)  # its lines stay lines
    assert not CONTROL.search(shown.replace("\n", "")), repr(shown)
