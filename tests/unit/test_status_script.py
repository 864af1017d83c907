"""scripts/status.sh and scripts/stack_status.py: days to expiry and the data-key generation
from a running stack's metrics (the rendering and exit codes here; the running stack in
tests/e2e/test_e2e_monitoring.py)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra import pki
from infra.settings import REPO_ROOT
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics, Validity

SCRIPT = REPO_ROOT / "scripts" / "status.sh"


def _exposition(tmp_path: Path, *, generation: str | None = "4") -> str:
    ca = pki.create_ca("CA", validity_days=200)
    client = pki.issue_client_certificate(ca, "app", validity_days=40)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "app.crt").write_bytes(client.cert_pem)
    if generation is not None:
        (tmp_path / "data.generation").write_text(generation + "\n")
    log = logging.getLogger("test_status_script")
    log.disabled = True
    metrics = CacheMetrics(
        SecurityEvents(log),
        ca_file=tmp_path / "ca.crt",
        client_cert_file=tmp_path / "app.crt",
        data_key_generation_file=tmp_path / "data.generation",
    )
    metrics.watch_server_certificate(
        lambda: Validity(time.time() - 86400, time.time() + 60 * 86400)
    )
    return metrics.render()[0].decode()


def _report(text: str, stack: str = "dev") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "stack_status.py"), stack],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_report__every_certificate_with_days_left_and_the_generation(tmp_path: Path) -> None:
    consumer = f"# consumer redis-exporter {time.time() + 30 * 86400}\n"
    result = _report(_exposition(tmp_path) + consumer)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert rows["CA (earliest in the bundle)"].endswith(("199.9", "200.0"))
    assert rows["Redis server (as served)"].endswith(("59.9", "60.0"))
    assert rows["app client"].endswith(("39.9", "40.0"))
    assert rows["redis-exporter client"].endswith(("29.9", "30.0"))
    assert "data-key generation 4 (previous keys still readable: 0)" in result.stdout
    assert "the app serves from: redis" in result.stdout


def test_report__a_value_the_stack_does_not_report_is_unknown_and_exit_1(
    tmp_path: Path,
) -> None:
    result = _report(_exposition(tmp_path, generation=None))  # nor the exporter's line
    assert result.returncode == 1
    assert "data-key generation unknown" in result.stdout
    assert "redis-exporter client" in result.stdout
    assert "unknown" in next(ln for ln in result.stdout.splitlines() if "redis-exporter" in ln)


def test_report__garbage_input_is_all_unknown_not_a_traceback() -> None:
    result = _report("<html>not metrics</html>\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Dev"], "is not a stack name"),
        (["no-such-stack"], "Pulumi.no-such-stack.yaml does not exist"),
        (["dev", "prod"], "usage: scripts/status.sh"),
    ],
)
def test_status_sh__bad_arguments_exit_2_with_the_fix(args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("status: error: ")
