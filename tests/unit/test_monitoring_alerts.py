"""monitoring/: the alert rules and scrape config pass promtool, and every alert is tested.

promtool comes from Debian's `prometheus` package (scripts/bootstrap.sh installs it). Like the
integration tests without redis-server, these skip when it is missing on a developer machine;
under CI (the `CI` variable set) a missing promtool is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from infra import pki
from infra.redis_conf import ACL_LOG_MAX_LEN, MAX_CLIENTS, RedisTlsConf, directives
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics
from secure_cache.redis_exporter import (
    ACL_LOG_READ,
    WATCHED_CERTIFICATES,
    acl_log_families,
    info_families,
    passwords_rotating_collector,
    summarize_acl_log,
    tls_policy_families,
    up_family,
)
from secure_cache.tls_probe import TlsPolicy
from tests.unit.test_redis_exporter_parsing import ACL_LOG, INFO

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
ALERTS = MONITORING / "alerts.yml"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed; run scripts/bootstrap.sh as root (Debian: prometheus)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules__pass_promtool_check(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules__pass_their_promtool_unit_tests(promtool: str) -> None:
    assert RULE_TESTS, "no rule tests in monitoring/tests/"
    result = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config__passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    # The example reads the app's API token from a file next to it; a placeholder stands in.
    shutil.copy(MONITORING / "prometheus.yml", tmp_path)
    shutil.copy(ALERTS, tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "secure-cache-api-token").write_text("placeholder\n")
    result = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert__has_a_firing_and_a_silent_case() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_every_alert__has_severity_and_a_summary() -> None:
    for rule in _alerts():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def _exported_names(tmp_path: Path) -> set[str]:
    """Every metric name the app and the exporter expose (all hooks fed once)."""
    ca = pki.create_ca("CA", validity_days=30)
    (tmp_path / "client.crt").write_bytes(
        pki.issue_client_certificate(ca, "app", validity_days=30).cert_pem
    )
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    metrics = CacheMetrics(
        SecurityEvents(), ca_file=tmp_path / "ca.crt", client_cert_file=tmp_path / "client.crt"
    )
    text = metrics.render()[0].decode()
    (tmp_path / "acl-users.rotating").write_text("0\n")
    rotating = CollectorRegistry()
    rotating.register(passwords_rotating_collector(tmp_path / "acl-users.rotating"))
    text += generate_latest(rotating).decode()
    families = [
        up_family(True),
        *info_families(INFO, tls_port=6380),
        *acl_log_families(summarize_acl_log(ACL_LOG)),
        *tls_policy_families(TlsPolicy(True, False)),
    ]
    text += "".join(f"{sample.name} 0\n" for family in families for sample in family.samples)
    return set(re.findall(r"^([a-z_]+)", text, re.MULTILINE))


def test_alerts__use_only_metrics_the_code_exports(tmp_path: Path) -> None:
    exported = _exported_names(tmp_path) | {"up"}
    for rule in _alerts():
        used = set(re.findall(r"\b((?:secure_cache|redis)_[a-z_]+|up)\b", rule["expr"]))
        assert used <= exported, f"{rule['alert']} uses {used - exported}, which nothing exports"


def test_eviction_policy_alert__names_the_stacks_policy() -> None:
    (rule,) = [r for r in _alerts() if r["alert"] == "RedisEvictionPolicyChanged"]
    conf = dict(directives(RedisTlsConf(6380, "c", "k", "ca", "acl", "/data", 64)))
    assert rule["expr"] == f'redis_maxmemory_policy{{policy!="{conf["maxmemory-policy"]}"}} == 1'


def test_max_clients_alert__matches_the_stacks_limit() -> None:
    (rule,) = [r for r in _alerts() if r["alert"] == "RedisMaxClientsRaised"]
    assert rule["expr"] == f"redis_max_clients > {MAX_CLIENTS}"


def test_acl_log_length_alert__matches_the_stacks_limit_and_what_the_exporter_reads() -> None:
    """The exporter reads one entry more than the stack keeps, so the alert can see a ninth."""
    (rule,) = [r for r in _alerts() if r["alert"] == "RedisAclLogLengthRaised"]
    assert rule["expr"] == f"sum by (job, instance) (redis_acl_log_entries) > {ACL_LOG_MAX_LEN}"
    assert ACL_LOG_READ == ACL_LOG_MAX_LEN + 1


def test_certificate_expiry_unknown__expects_every_certificate_each_target_reports() -> None:
    """The rule names, per job, the certificates whose series must exist: the app's CA bundle
    and client certificate (CacheMetrics with REDIS_TLS_CA_CERT and REDIS_TLS_CERT_FILE, as
    the service runs it), and the exporter's two plus every certificate it watches
    (ExporterSettings.certificate_files). One added to either and left out here is never
    missed."""
    (rule,) = [r for r in _alerts() if r["alert"] == "CertificateExpiryUnknown"]
    expected: dict[str, set[str]] = {}
    for job, certificate in re.findall(
        r'label_replace\(up\{job="([a-z-]+)"\} == 1, "certificate", "([a-z]+)", "", ""\)',
        rule["expr"],
    ):
        expected.setdefault(job, set()).add(certificate)
    assert expected == {
        "secure-cache": {"ca", "client"},
        "redis-exporter": {"ca", "client", *WATCHED_CERTIFICATES},
    }


def test_readme_alert_table__has_one_true_row_per_rule() -> None:
    """docs/monitoring.md's table (README's "Monitoring" until 2026-12-03) is the runbook: one
    row per alert, with the rule's severity, and no row for an alert the rules no longer
    have."""
    readme = (ROOT / "docs" / "monitoring.md").read_text()
    rows = re.findall(r"^\| `([A-Z][A-Za-z]+)` \| (warning|critical) \|", readme, re.MULTILINE)
    assert len(rows) >= 10, "positive control: the table was found"
    documented = [name for name, _ in rows]
    assert len(documented) == len(set(documented)), "an alert with two rows"
    assert dict(rows) == {rule["alert"]: rule["labels"]["severity"] for rule in _alerts()}


def test_scrape_config__the_token_file_it_names_is_ignored_by_git() -> None:
    # docs/monitoring.md has the user copy the app's API token to the file the example names,
    # inside the checkout; git must not offer to commit it (found following the document,
    # docs pass of 2026-12-03: `git status` listed monitoring/secrets/ as untracked).
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    files = [
        job["authorization"]["credentials_file"]
        for job in config["scrape_configs"]
        if "authorization" in job
    ]
    assert files, "positive control: the example reads a token from a file"
    if not (MONITORING.parent / ".git").exists():
        pytest.skip("not a git checkout")
    for name in files:
        path = (MONITORING / name).relative_to(MONITORING.parent)
        result = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", str(path)],
            cwd=MONITORING.parent,
            check=False,
        )
        assert result.returncode == 0, f"{path} (the token file) is not ignored by .gitignore"
