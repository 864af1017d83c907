"""scripts/status.sh and scripts/stack_status.py: days to expiry and the data-key generation
from a running stack's metrics (the rendering and exit codes here; the running stack in
tests/e2e/test_e2e_monitoring.py)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from infra import pki
from infra.pulumi_names import CONTAINER
from infra.render import RenderedStack
from infra.settings import REPO_ROOT
from scripts.stack_status import (
    BUNDLE_NAMES,
    BUNDLES,
    CONSUMER_NAMES,
    CONSUMERS,
    CONTAINER_SUFFIXES,
)
from secure_cache.metrics import SecurityEvents
from secure_cache.prometheus import CacheMetrics, Validity
from tests.unit.conftest import container, container_roles, uploads

SCRIPT = REPO_ROOT / "scripts" / "status.sh"


def _exposition(
    tmp_path: Path, *, generation: str | None = "4", previous_tokens: int | None = None
) -> str:
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
    if previous_tokens is not None:
        metrics.watch_api_tokens(lambda: previous_tokens)
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


# What status.sh keeps of the exporter's /metrics (its snippet prints these lines).
REDIS_LINES = "".join(
    f"# redis {line}\n"
    for line in (
        "redis_up 1.0",
        'redis_errors_total{error="NOPERM"} 8.0',
        'redis_errors_total{error="WRONGPASS"} 6.0',
        'redis_acl_log_entries{reason="auth"} 3.0',
        'redis_acl_log_entries{reason="command"} 0.0',
        'redis_acl_log_entries{reason="key"} 5.0',
        'redis_acl_log_entries{reason="channel"} 0.0',
        'redis_acl_log_newest_age_seconds{reason="auth"} 200.5',
        'redis_acl_log_newest_age_seconds{reason="key"} 42.0',
    )
)


def test_report__every_certificate_with_days_left_and_the_generation(tmp_path: Path) -> None:
    consumers = "".join(
        f"# consumer {name} {time.time() + days * 86400}\n"
        for name, days in (
            ("redis-exporter", 30),
            ("rotation", 20),
            ("healthcheck", 25),
            ("reload", 35),
        )
    )
    in_200_days = time.time() + 200 * 86400
    trusted = "".join(f"# trusted {name} {in_200_days}\n" for name in ("Redis", "app"))
    result = _report(_exposition(tmp_path) + consumers + trusted + REDIS_LINES)
    assert result.returncode == 0, result.stderr
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert rows["CA (earliest in the bundle)"].endswith(("199.9", "200.0"))
    assert rows["Redis server (as served)"].endswith(("59.9", "60.0"))
    assert rows["app client"].endswith(("39.9", "40.0"))
    assert rows["redis-exporter client"].endswith(("29.9", "30.0"))
    assert rows["rotation client"].endswith(("19.9", "20.0"))
    assert rows["healthcheck client"].endswith(("24.9", "25.0"))
    assert rows["reload client"].endswith(("34.9", "35.0"))
    assert "data-key generation 4 (previous keys still readable: 0)" in result.stdout
    assert "the app serves from: redis" in result.stdout
    assert "CAs trusted: Redis 1, app 1" in result.stdout
    assert "API tokens accepted: the current one and 0 previous" in result.stdout
    assert "rotation unfinished" not in result.stdout


def test_report__days_left_are_cut_not_rounded_as_infra_apply_status_counts_them(
    tmp_path: Path,
) -> None:
    """A CA issued a minute ago showed 365.0 days here and "364 days left" in `infra.apply
    status` (infra/applier/status.py counts whole days) in the same setup summary."""
    consumers = (
        "".join(
            f"# consumer {name} {time.time() + days * 86400}\n"
            for name, days in (("redis-exporter", 30), ("rotation", 364.97), ("healthcheck", 25))
        )
        + f"# consumer reload {time.time() + 35 * 86400}\n"
    )
    result = _report(_exposition(tmp_path) + consumers + REDIS_LINES)
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert rows["rotation client"].endswith("364.9"), rows["rotation client"]


def test_report__an_old_api_token_still_accepted__says_how_to_retire_it(tmp_path: Path) -> None:
    result = _report(_exposition(tmp_path, previous_tokens=1) + REDIS_LINES, stack="prod")
    assert "API tokens accepted: the current one and 1 previous" in result.stdout
    assert "retire it: scripts/rotate.sh prod api-token-retire" in result.stdout


def test_report__a_value_the_stack_does_not_report_is_unknown_and_exit_1(
    tmp_path: Path,
) -> None:
    result = _report(_exposition(tmp_path, generation=None))  # nor the exporter's line
    assert result.returncode == 1
    assert "data-key generation unknown" in result.stdout
    assert "redis-exporter client" in result.stdout
    assert "unknown" in next(ln for ln in result.stdout.splitlines() if "redis-exporter" in ln)


def test_report__redis_acl_log_by_reason_and_the_denials_since_redis_started(
    tmp_path: Path,
) -> None:
    """What RedisAuthFailureBurst and RedisAclDenials fire on, as counts: the exporter's
    redis_acl_log_* and redis_errors_total (the leftover of earlier passes: status.sh did not
    show them)."""
    result = _report(_exposition(tmp_path) + REDIS_LINES)
    assert "Redis ACL LOG now: auth 3, command 0, key 5, channel 0; the newest 42 s ago" in (
        result.stdout
    )
    assert "denied since Redis started: WRONGPASS 6, NOPERM 8" in result.stdout


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ("", "the exporter's /metrics could not be read"),
        ("# redis redis_up 0.0\n", "the exporter cannot query Redis: redis_up 0"),
        ("# redis <html>\n", "the exporter's /metrics could not be read"),
    ],
    ids=["missing", "redis-down", "garbage"],
)
def test_report__redis_acl_log_not_read_is_unknown_and_exit_1(
    tmp_path: Path, lines: str, why: str
) -> None:
    consumers = "".join(f"# consumer {n} {time.time() + 86400}\n" for n in CONSUMER_NAMES)
    trusted = "".join(f"# trusted {b} {time.time() + 86400}\n" for b in BUNDLE_NAMES)
    complete = _report(_exposition(tmp_path) + consumers + trusted + REDIS_LINES)
    assert complete.returncode == 0, "positive control: everything else is there"
    result = _report(_exposition(tmp_path) + consumers + trusted + lines)
    assert result.returncode == 1
    assert f"Redis ACL LOG: unknown ({why})" in result.stdout


def test_status_sh__keeps_only_the_exporters_counts_of_redis(tmp_path: Path) -> None:
    """status.sh's own snippet against an exporter stand-in: the lines it keeps are the
    counts, whatever else the exporter serves."""
    _stack_with_client_certificates(tmp_path)
    (tmp_path / f"{EXPORTER}.out").unlink()  # the snippet runs here, against the stand-in
    served = (
        REDIS_LINES.replace("# redis ", "")
        + 'secure_cache_certificate_expiry_timestamp_seconds{certificate="ca"} 1.0\n'
        + "redis_memory_used_bytes 1.0\n"
    ).encode()

    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(served)))
            self.end_headers()
            self.wfile.write(served)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _status_sh(tmp_path, exporter_port=server.server_address[1])
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Redis ACL LOG now: auth 3, command 0, key 5, channel 0" in result.stdout
    assert "memory" not in result.stdout


def test_status_sh__an_exporter_that_does_not_answer_is_unknown_with_a_warning(
    tmp_path: Path,
) -> None:
    _stack_with_client_certificates(tmp_path)
    (tmp_path / f"{EXPORTER}.out").unlink()  # the snippet runs here: nothing on port 1
    result = _status_sh(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith(f"status: warning: {EXPORTER}: its /metrics could not be read")
    assert "Connection refused" in warning[0] or "URLError" in warning[0], warning[0]
    assert "Redis ACL LOG: unknown" in result.stdout


def test_report__garbage_input_is_all_unknown_not_a_traceback() -> None:
    result = _report("<html>not metrics</html>\n")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Dev"], "is not a stack name"),
        (["no-such-stack"], "Pulumi.no-such-stack.yaml does not exist (stacks: "),
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
    if listed := re.search(r"\(stacks: ([^)]*)\)", result.stderr):
        assert {"dev", "prod"} <= set(listed.group(1).split()), "the stacks there are"


# A `docker` CLI stand-in for a half-deployed stack: `info` answers, a container runs when
def test_status_sh__what_a_container_says_reaches_the_terminal_without_control_characters(
    tmp_path: Path,
) -> None:
    """A warning quotes the last line a container's snippet wrote, and that line quotes what
    the container's server answered (here an HTTP reason phrase). A taken-over exporter (or
    app) answered with terminal escapes, and status.sh wrote them to the operator's terminal
    as they were: a window title, a cleared screen, a clipboard write (OSC 52) (attack pass
    of 2026-12-03). They are shown escaped, as scripts/lib.sh `shown` shows an argument."""
    _stack_with_client_certificates(tmp_path)
    (tmp_path / f"{EXPORTER}.out").unlink()  # the snippet runs here, against the stand-in
    reason = "Oops\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBwd25lZA==\x07\r"

    class Exporter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500, reason)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _status_sh(tmp_path, exporter_port=server.server_address[1])
    finally:
        server.shutdown()
    warning = [ln for ln in result.stderr.splitlines() if EXPORTER in ln]
    assert len(warning) == 1, result.stderr
    assert "HTTP Error 500: Oops" in warning[0], "positive control: the reason is quoted"
    shown = result.stderr + result.stdout
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", shown), repr(shown)


# FAKE_DOCKER/running-<name> exists, `exec <name> python3 -c <snippet>` prints
# FAKE_DOCKER/<name>.out when there is one, else runs status.sh's own snippet here with the
# container's material directory mapped to FAKE_DOCKER/<name>/, and `cp -L <name>:<path> -`
# writes the tar Docker writes of FAKE_DOCKER/<name>/<file>, running or not (as Docker does: it
# reads a stopped container's volumes too), or fails as Docker does for a container that is not
# there. The stack's material files are symlinks (infra/components/material.py), so the fake
# refuses a copy without -L, which would hold the link and not the certificate.
FAKE_DOCKER = r"""#!/usr/bin/env bash
case "$1" in
    info) [ -z "${FAKE_LIVE_RESTORE:-}" ] || echo "$FAKE_LIVE_RESTORE"; exit 0 ;;
    inspect) if [ -e "$FAKE_DOCKER/running-${!#}" ]; then echo true; else echo false; fi ;;
    exec)
        name="$2"
        if [ -f "$FAKE_DOCKER/$name.out" ]; then cat "$FAKE_DOCKER/$name.out"; exit 0; fi
        exec "$FAKE_PYTHON" -c "${5//\/etc\/secure-cache/$FAKE_DOCKER/$name}" ;;
    cp)
        [ "$2" = -L ] || { echo "fake docker: cp without -L copies the symlink" >&2; exit 98; }
        name="${3%%:*}" path="${3#*:}"
        if [ ! -d "$FAKE_DOCKER/$name" ]; then
            echo "Error response from daemon: No such container: $name" >&2; exit 1
        fi
        exec tar -C "$FAKE_DOCKER/$name" -chf - "${path##*/}" ;;
    *) echo "fake docker: unexpected $*" >&2; exit 99 ;;
esac
"""
APP = "secure-redis-dev-app"
# (container, file) of each CA bundle status.sh counts, where the declaration puts it.
TRUST_BUNDLES = tuple(
    (f"secure-redis-dev-{b.container}", b.path.rsplit("/", 1)[1]) for b in BUNDLES
)
EXPORTER = "secure-redis-dev-redis-exporter"
# (table row, container, file) of every client certificate the app does not report, each
# where the stack's declaration puts it (the last test here pins CONSUMERS to it).
CLIENT_CERTIFICATES = tuple(
    (f"{c.name} client", f"secure-redis-dev-{c.container}", c.path.rsplit("/", 1)[1])
    for c in CONSUMERS
)


def _status_sh(
    fake: Path, live_restore: str = "", exporter_port: int = 1, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    """status.sh against the fake engine; `live_restore`: what `docker info` says of it. The
    exporter's snippet, when it has no `.out`, runs here against 127.0.0.1:`exporter_port`
    (port 1: nothing listens, the connection is refused). `script`: status.sh in a copy of the
    checkout (its own .secure-redis/ and .venv/)."""
    bin_dir = fake / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_DOCKER": str(fake),
        "FAKE_PYTHON": sys.executable,
        "FAKE_LIVE_RESTORE": live_restore,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(exporter_port),
    }
    return subprocess.run(
        [str(script), "dev"], capture_output=True, text=True, timeout=60, check=False, env=env
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
    _stack_with_client_certificates(tmp_path)
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


def _stack_with_client_certificates(fake: Path, cas: int = 1) -> dict[str, int]:
    """The app running and reporting; every other container holding its client certificate,
    none of them running (the rotation pass is declared stopped, the reload jobs exit); Redis
    and the app trusting a bundle of `cas` CAs (two: a CA rollover in progress). The days each
    certificate was issued for, by table row."""
    (fake / f"running-{APP}").touch()
    (fake / "app-files").mkdir()
    (fake / f"{APP}.out").write_text(_exposition(fake / "app-files"))
    (fake / f"{EXPORTER}.out").write_text(REDIS_LINES)
    ca = pki.create_ca("CA", validity_days=400)
    days = {}
    for i, (row, name, file) in enumerate(CLIENT_CERTIFICATES):
        days[row] = 10 + 10 * i
        leaf = pki.issue_client_certificate(ca, row.split()[0], validity_days=days[row])
        (fake / name).mkdir(exist_ok=True)
        (fake / name / file).write_bytes(leaf.cert_pem)
    bundle = ca.cert_pem + b"".join(
        pki.create_ca(f"CA {n}", validity_days=500).cert_pem for n in range(1, cas)
    )
    for name, file in TRUST_BUNDLES:
        (fake / name).mkdir(exist_ok=True)
        (fake / name / file).write_bytes(bundle)
    return days


def test_status_sh__reads_every_client_certificate_running_or_stopped(tmp_path: Path) -> None:
    """The rotation pass never runs between rotations and the reload jobs exit after an `up`:
    their certificates are read from the stopped containers all the same."""
    days = _stack_with_client_certificates(tmp_path)
    result = _status_sh(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    for row, issued in days.items():
        assert rows[row].endswith((f"{issued - 1}.9", f"{issued}.0")), rows.get(row)


def test_status_sh__a_container_that_is_not_there_is_unknown_with_the_engines_reason(
    tmp_path: Path,
) -> None:
    _stack_with_client_certificates(tmp_path)
    shutil.rmtree(tmp_path / "secure-redis-dev-rotation")
    result = _status_sh(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith("rotation client"))
    assert "unknown" in row
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith("status: warning: secure-redis-dev-rotation"), warning
    assert "No such container" in warning[0]


def test_report__an_expired_certificate_says_so_and_how_to_renew_it(tmp_path: Path) -> None:
    consumer = f"# consumer redis-exporter {time.time() - 2 * 86400}\n"
    result = _report(_exposition(tmp_path) + consumer, stack="prod")
    row = next(ln for ln in result.stdout.splitlines() if ln.startswith("redis-exporter client"))
    assert row.endswith("expired"), row
    assert "scripts/rotate.sh prod certs" in result.stdout
    others = [ln for ln in result.stdout.splitlines() if ln.startswith(("app client", "CA "))]
    assert not any("expired" in ln for ln in others)


def test_consumers__every_client_certificate_the_app_does_not_report_where_the_stack_puts_it(
    dev: RenderedStack,
) -> None:
    """status.sh copies each of stack_status.CONSUMERS out of its container: each is the file
    the stack's declaration writes into a volume that container mounts there, and together
    with the app's own they are every client certificate the stack issues (a new identity
    left out of status.sh fails here)."""
    for consumer in CONSUMERS:
        user = container(dev, consumer.container)
        directory, file = consumer.path.rsplit("/", 1)
        volume = next(m["source"] for m in user.props["mounts"] if m["target"] == directory)
        writers = [
            r
            for r in dev.of_type(CONTAINER)
            if any(m["source"] == volume for m in r.props.get("mounts", []))
        ]
        assert any(file in uploads(w) for w in writers), f"{consumer}: no {file} in {volume}"
    issued = {
        r.name.removeprefix("tls-").removesuffix("-client")
        for r in dev.resources
        if r.type.endswith(":LeafCertificate") and r.name.endswith("-client")
    }
    assert issued == {"app"} | {Path(c.path).stem for c in CONSUMERS}


def test_status_sh__two_trusted_cas_say_the_ca_rollover_is_unfinished(tmp_path: Path) -> None:
    """Between a CA rollover's introduce and retire steps Redis and the app trust the old CA
    beside the new one: a client certificate the old CA signed is still accepted. status.sh
    says so, and what finishes it (infra.apply status did; status.sh showed one CA row)."""
    _stack_with_client_certificates(tmp_path, cas=2)
    result = _status_sh(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CAs trusted: Redis 2, app 2" in result.stdout
    unfinished = next(ln for ln in result.stdout.splitlines() if "rotation unfinished" in ln)
    assert "the old CA is still trusted beside the new one (by Redis, app)" in unfinished
    assert "python -m infra.apply up --stack dev" in unfinished


def test_status_sh__one_trusted_ca_is_no_rotation(tmp_path: Path) -> None:
    _stack_with_client_certificates(tmp_path, cas=1)
    result = _status_sh(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CAs trusted: Redis 1, app 1" in result.stdout
    assert "rotation unfinished" not in result.stdout


def test_status_sh__an_unreadable_ca_bundle_is_unknown_with_a_warning(tmp_path: Path) -> None:
    _stack_with_client_certificates(tmp_path)
    redis, file = TRUST_BUNDLES[0]
    (tmp_path / redis / file).unlink()
    result = _status_sh(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CAs trusted: Redis unknown, app 1" in result.stdout
    assert f"status: warning: {redis}: its CA bundle could not be read" in result.stderr


@pytest.mark.parametrize(
    ("live_restore", "expected"),
    [
        ("false", "engine WARNING live-restore: off"),
        ("true", "engine live-restore: on"),
    ],
)
def test_status_sh__says_whether_the_engine_keeps_the_stack_running_through_a_restart(
    tmp_path: Path, live_restore: str, expected: str
) -> None:
    """Without live-restore an engine restart stops the stack's services for good (restart
    on-failure): status.sh says so and how to turn it on, from `docker info`."""
    _stack_with_client_certificates(tmp_path)
    result = _status_sh(tmp_path, live_restore=live_restore)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "live-restore" in ln)
    assert line.startswith(expected), line
    if live_restore == "false":
        assert '"live-restore": true' in line
        assert "/etc/docker/daemon.json" in line


def test_bundles__each_is_the_ca_file_the_declaration_writes_where_that_container_reads_it(
    dev: RenderedStack,
) -> None:
    for bundle in BUNDLES:
        user = container(dev, bundle.container)
        directory, file = bundle.path.rsplit("/", 1)
        volume = next(m["source"] for m in user.props["mounts"] if m["target"] == directory)
        writers = [
            r
            for r in dev.of_type(CONTAINER)
            if any(m["source"] == volume for m in r.props.get("mounts", []))
        ]
        assert any(file in uploads(w) for w in writers), f"{bundle}: no {file} in {volume}"


def test_report__a_container_not_the_stacks_on_its_networks_is_named(tmp_path: Path) -> None:
    """status.sh lists the containers on the stack's networks not labelled as the stack's
    (`# stranger NETWORK NAME`); one run there by hand reaches Redis (attack pass of
    2026-12-03). Named with the way out; the exit code stays the read's (an e2e probe may be
    there while the suite runs)."""
    clean = _report(
        _exposition(tmp_path)
        + REDIS_LINES
        + "# networks read\n# attached secure-redis-s88-backend secure-redis-s88-redis s88\n",
        stack="s88",
    )
    assert "networks: only the stack's containers are attached" in clean.stdout
    ours = "# attached secure-redis-s88-backend secure-redis-s88-redis s88\n"
    text = (
        f"# networks read\n{ours}"
        # run from the stack's image: its stack label is the image's
        "# attached secure-redis-s88-backend rogue s88\n"
    )
    result = _report(_exposition(tmp_path) + REDIS_LINES + text, stack="s88")
    assert result.returncode == clean.returncode, result.stderr
    assert (
        "not the stack's, attached to its networks: rogue (secure-redis-s88-backend); it "
        "reaches the stack's containers there: `docker network disconnect "
        "secure-redis-s88-backend rogue` (or remove it)"
    ) in result.stdout
    unread = _report(_exposition(tmp_path) + REDIS_LINES, stack="s88")
    assert "networks: unknown" in unread.stdout


def test_status_sh__knows_every_container_the_program_declares() -> None:
    """stack_status.CONTAINER_SUFFIXES is the rendered stack's containers, so a container
    added to the program is not reported as a stranger on its own network."""
    assert tuple(sorted(CONTAINER_SUFFIXES)) == container_roles()


def _engine(tmp_path: Path) -> Path:
    (tmp_path / "engine").mkdir()
    return tmp_path / "engine"


def _checkout(root: Path, *, deployed_here: bool) -> Path:
    """A copy of the checkout's status.sh, its helpers and Pulumi.dev.yaml, with a virtualenv
    of this interpreter and, when `deployed_here`, the local applier's state of dev (its
    contents are never read): status.sh there."""
    (root / "scripts").mkdir(parents=True)
    for name in ("status.sh", "lib.sh", "stack_status.py"):
        shutil.copy2(REPO_ROOT / "scripts" / name, root / "scripts" / name)
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", root / "Pulumi.dev.yaml")
    (root / ".venv" / "bin").mkdir(parents=True)
    python = root / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # its site-packages
    python.chmod(0o755)
    if deployed_here:
        (root / ".secure-redis" / "state").mkdir(parents=True)
        (root / ".secure-redis" / "state" / "dev.state").write_bytes(b"sealed")
    return root / "scripts" / "status.sh"


DRIFT_HINT = (
    "status: not read here: what the next up would change (drift, a setting changed since the "
    "last up): python -m infra.apply status --stack dev"
)


def test_status_sh__points_at_the_applier_status_for_drift_once_after_the_table(
    tmp_path: Path,
) -> None:
    """plan16 (s46, 2026-12-03): status.sh never reads the applier's state, so drift shows only
    in `python -m infra.apply status`; nothing said so. The exit code stays the table's."""
    _stack_with_client_certificates(_engine(tmp_path))
    script = _checkout(tmp_path / "checkout", deployed_here=True)
    result = _status_sh(tmp_path / "engine", script=script)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines.count(DRIFT_HINT) == 1, result.stdout
    assert lines[-1] == DRIFT_HINT, result.stdout


def test_status_sh__says_nothing_of_the_applier_where_it_did_not_deploy_the_stack(
    tmp_path: Path,
) -> None:
    """No state in this checkout (`pulumi up` deployed it, or another checkout did): `infra.apply
    status` would only say the stack is not deployed from here."""
    _stack_with_client_certificates(_engine(tmp_path))
    script = _checkout(tmp_path / "checkout", deployed_here=False)
    result = _status_sh(tmp_path / "engine", script=script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "infra.apply status" not in result.stdout + result.stderr


def test_status_sh__a_value_not_read_keeps_exit_1_with_the_pointer(tmp_path: Path) -> None:
    _stack_with_client_certificates(_engine(tmp_path))
    shutil.rmtree(tmp_path / "engine" / "secure-redis-dev-rotation")
    script = _checkout(tmp_path / "checkout", deployed_here=True)
    result = _status_sh(tmp_path / "engine", script=script)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == DRIFT_HINT
