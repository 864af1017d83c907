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


# A `docker` CLI stand-in for a half-deployed stack: `info` answers, a container runs when
# FAKE_DOCKER/running-<name> exists, and `exec <name> python3 -c <snippet>` prints
# FAKE_DOCKER/<name>.out when there is one, else runs status.sh's own snippet here with the
# container's material directory mapped to FAKE_DOCKER/<name>/.
FAKE_DOCKER = r"""#!/usr/bin/env bash
case "$1" in
    info) exit 0 ;;
    inspect) if [ -e "$FAKE_DOCKER/running-${!#}" ]; then echo true; else echo false; fi ;;
    exec)
        name="$2"
        if [ -f "$FAKE_DOCKER/$name.out" ]; then cat "$FAKE_DOCKER/$name.out"; exit 0; fi
        exec "$FAKE_PYTHON" -c "${5//\/etc\/secure-cache/$FAKE_DOCKER/$name}" ;;
    *) echo "fake docker: unexpected $*" >&2; exit 99 ;;
esac
"""
APP = "secure-redis-dev-app"
EXPORTER = "secure-redis-dev-redis-exporter"


def _status_sh(fake: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = fake / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_DOCKER": str(fake),
        "FAKE_PYTHON": sys.executable,
    }
    return subprocess.run(
        [str(SCRIPT), "dev"], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_status_sh__an_app_that_cannot_scrape_itself_is_one_line_and_exit_3(
    tmp_path: Path,
) -> None:
    """The app runs but its token file is gone (a half-written material volume): one error
    line naming the container and the cause, no traceback."""
    (tmp_path / f"running-{APP}").touch()
    (tmp_path / APP).mkdir()  # no api.token in it
    result = _status_sh(tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"status: error: {APP} did not answer its /metrics")
    assert "FileNotFoundError" in lines[0]


def test_status_sh__a_corrupted_exporter_certificate_is_unknown_with_a_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / f"running-{APP}").touch()
    (tmp_path / f"running-{EXPORTER}").touch()
    (tmp_path / "app-files").mkdir()
    (tmp_path / f"{APP}.out").write_text(_exposition(tmp_path / "app-files"))
    (tmp_path / EXPORTER).mkdir()
    (tmp_path / EXPORTER / "exporter.crt").write_text("-----BEGIN CERTIFICATE-----\nnot one\n")
    result = _status_sh(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith("redis-exporter client"))
    assert "unknown" in row
    warning = [ln for ln in result.stderr.splitlines() if EXPORTER in ln]
    assert warning, result.stderr
    assert warning[0].startswith("status: warning: "), result.stderr
    assert "ValueError" in warning[0]


def test_report__an_expired_certificate_says_so_and_how_to_renew_it(tmp_path: Path) -> None:
    consumer = f"# consumer redis-exporter {time.time() - 2 * 86400}\n"
    result = _report(_exposition(tmp_path) + consumer, stack="prod")
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith("redis-exporter client"))
    assert row.endswith("expired"), row
    assert "scripts/rotate.sh prod certs" in result.stdout
    others = [ln for ln in result.stdout.splitlines() if ln.startswith(("app client", "CA "))]
    assert not any("expired" in ln for ln in others)
