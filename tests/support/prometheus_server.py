"""A real Prometheus (Debian's `prometheus` package) for tests, on a free loopback port.

It loads monitoring/alerts.yml with every `for:` shortened to `for_seconds` and scrapes and
evaluates every second, so an alert that fires within minutes in production fires within
seconds here: the rules' expressions are exactly the repository's. Storage lives in a
temporary directory; `stop()` ends the process (its own process group) and removes nothing
else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.tls_redis import free_port

PROMETHEUS = "prometheus"
ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "alerts.yml"
_START_TIMEOUT_S = 30.0


class PrometheusError(RuntimeError):
    """The test Prometheus could not be started or queried."""


def fast_rules(source: Path, for_seconds: int) -> dict[str, Any]:
    """The rule file with every `for:` set to `for_seconds` (expressions unchanged)."""
    rules: dict[str, Any] = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{for_seconds}s"
    return rules


class PrometheusServer:
    def __init__(
        self,
        workdir: Path,
        targets: dict[str, str],
        *,
        for_seconds: int = 2,
        bearer_files: dict[str, Path] | None = None,
        scrape_seconds: int = 1,
    ) -> None:
        """`targets`: job name -> host:port of a /metrics endpoint (loopback, or a container
        on the project's own networks); `bearer_files`: job name -> a file holding the bearer
        token that job's target requires (as monitoring/prometheus.yml scrapes the app);
        `scrape_seconds`: the scrape interval, also the scrape timeout (Prometheus allows no
        longer one)."""
        if shutil.which(PROMETHEUS) is None:
            raise PrometheusError(
                "prometheus not found; run scripts/bootstrap.sh (installs Debian's prometheus)"
            )
        self.workdir = workdir
        self.port = free_port()
        rules = workdir / "alerts.yml"
        rules.write_text(yaml.safe_dump(fast_rules(ALERTS, for_seconds)))
        config = {
            "global": {
                "scrape_interval": f"{scrape_seconds}s",
                "scrape_timeout": f"{scrape_seconds}s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [target]}],
                    **(
                        {"authorization": {"type": "Bearer", "credentials_file": str(path)}}
                        if (path := (bearer_files or {}).get(job))
                        else {}
                    ),
                }
                for job, target in targets.items()
            ],
        }
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log_file = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited; log:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus was not ready; log:\n{self._log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self, state: str = "firing") -> set[str]:
        return {
            a["labels"]["alertname"] for a in self.api("alerts")["alerts"] if a["state"] == state
        }

    def active_alerts(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.api("alerts")["alerts"]}

    def wait_for(self, predicate: Any, *, timeout: float = 60.0, what: str = "") -> None:
        """Poll `predicate()` until it is true; PrometheusError (with the log) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise PrometheusError(
            f"gave up waiting for {what or predicate}; firing={self.alerts()} "
            f"pending={self.alerts('pending')}"
        )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"
