"""The scripts infra/rotation_probe.py runs inside the stack's containers, run on this host
against a real TLS redis-server, a copy of the app's material volume and a stand-in for the
app's API (tests/support/app_material.py): one exec per container gives every fact a snapshot
needs, and nothing secret leaves the container."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import pki
from infra.redis_acl import APP_USER
from infra.redis_conf import MAX_CLIENTS
from infra.rotation_probe import (
    NOT_SERVED,
    REDIS_FILES,
    ProbeError,
    bundle_serials,
    cert_serial,
    files_command,
    fingerprint,
    read_app_facts,
    round_trip_command,
    served_serial,
    snapshot_of,
    split_files,
    unsettled,
)
from infra.secretgen import generate_password
from tests.support.app_material import (
    REVISION,
    StatusApi,
    app_facts,
    app_material,
    run_app_facts,
    run_here,
)
from tests.support.rotating_redis import RotatingRedis, serial
from tests.support.tls_redis import REDIS_SERVER

pytestmark = pytest.mark.skipif(
    __import__("shutil").which(REDIS_SERVER) is None, reason="redis-server is not installed"
)


@pytest.fixture
def rotating() -> Iterator[RotatingRedis]:
    server = RotatingRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_app_facts__every_fact_of_the_app_side_in_one_run_and_no_secret(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    r = rotating
    cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    token, old = generate_password(32), generate_password(32)
    material = app_material(tmp_path, r, cert, token=token, previous_tokens=(old, old))
    with StatusApi(token) as api:
        api.status = {"backend": "redis", "counters": {"material_reloads": 3}}
        done = run_app_facts(material, r, api)
        facts = app_facts(material, r, api)
    assert done.returncode == 0, done.stderr[-2000:]
    assert facts["status"] == api.status, "the API answered the token the volume holds"
    assert facts["token_sha256"] == sha256(token)
    assert facts["previous_tokens"] == 1, "earlier tokens are counted once each"
    assert facts["password_sha256"] == sha256(material.password)
    assert facts["material"] == "..2026_12_01_rev1", "the revision `..data` points at"
    assert cert_serial(facts["cert"]) == f"{serial(cert):X}"
    assert bundle_serials(facts["ca"]) == [f"{serial(r.ca):X}"]
    assert served_serial(facts["served"]) == f"{serial(r.server_cert):X}"
    for secret in (token, old, material.password, cert.key_pem.decode()):
        assert secret not in done.stdout + done.stderr


def test_app_facts__a_token_the_api_refuses_fails_the_run(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """The app must accept the token it hands out: a snapshot cannot pass without it."""
    cert = pki.issue_client_certificate(rotating.ca, APP_USER, validity_days=2)
    material = app_material(tmp_path, rotating, cert, token=generate_password(32))
    with StatusApi(token=generate_password(32)) as api:
        done = run_app_facts(material, rotating, api)
    assert done.returncode != 0
    assert "401" in done.stderr
    assert material.token not in done.stdout + done.stderr


def _round_trip(api: StatusApi, material_dir: Path, key: str) -> str:
    command = round_trip_command(key, uuid.uuid4().hex, str(material_dir), api.base)
    return run_here(command, check=True).stdout.strip()


def test_round_trip__same_only_when_the_api_gives_back_the_write_and_the_key_is_deleted(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    cert = pki.issue_client_certificate(rotating.ca, APP_USER, validity_days=2)
    material = app_material(tmp_path, rotating, cert, token=generate_password(32))
    key = f"/cache/rotation-probe-{uuid.uuid4().hex}"
    with StatusApi(material.token) as api:
        assert _round_trip(api, material.directory, key) == "same"
        assert [m for m, _ in api.requests] == ["PUT", "GET", "DELETE"]
        assert api.store == {}, "the probe's key is deleted"
        api.corrupt_reads = True
        assert _round_trip(api, material.directory, key) == "different"


def test_files_command__prints_each_file_apart_and_fails_on_a_missing_one(tmp_path: Path) -> None:
    contents = ["-----BEGIN CERTIFICATE-----\nA\n", "", "user app on #ab\nuser x off\n"]
    paths = []
    for n, text in enumerate(contents):
        path = tmp_path / f"f{n}"
        path.write_text(text)
        paths.append(str(path))
    printed = subprocess.run(files_command(paths), capture_output=True, text=True, check=True)
    assert split_files("redis", printed.stdout, len(paths)) == contents
    missing = subprocess.run(
        files_command([paths[0], str(tmp_path / "gone")]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0
    with pytest.raises(ProbeError, match="expected 3 files, read 2"):
        split_files("redis", "a\0b\0", 3)
    with pytest.raises(ProbeError):
        split_files("redis", "a\0b\0truncated", 2)


def _redis_files(r: RotatingRedis) -> list[str]:
    """Redis's files as the probe reads them (its own command and REDIS_FILES' order), from
    the test server's volume."""
    paths = [str(r.volume / Path(f).name) for f in REDIS_FILES]
    printed = subprocess.run(files_command(paths), capture_output=True, text=True, check=True)
    return split_files("redis", printed.stdout, len(paths))


def test_snapshot_of__a_consistent_stack_reads_settled_field_for_field(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """Both scripts' output as Probe.snapshot assembles it: every field names what the volume,
    the app's files and its API hold, and a stack whose consumers agree is settled. A field
    read from the wrong fact (or files taken in another order) fails here, not on a stack."""
    r = rotating
    cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    token = generate_password(32)
    material = app_material(
        tmp_path,
        r,
        cert,
        token=token,
        previous_tokens=(generate_password(32),),
        password=r.passwords[APP_USER][0],
    )
    containers = {"redis": {"id": "r", "startedAt": "t0"}, "app": {"id": "a", "startedAt": "t1"}}
    with StatusApi(token) as api:
        api.status = {
            "backend": "redis",
            "encryption": {"primary_key_id": "k2", "previous_key_ids": ["k1"]},
            "counters": {"material_reloads": 4},
        }
        snap = snapshot_of(containers, _redis_files(r), app_facts(material, r, api))
    ca = f"{serial(r.ca):X}"
    assert snap == {
        "containers": containers,
        "served_serial": f"{serial(r.server_cert):X}",
        "served_issuer": ca,
        "server_serial": f"{serial(r.server_cert):X}",
        "server_issuer": ca,
        "app_cert_serial": f"{serial(cert):X}",
        "app_cert_issuer": ca,
        "redis_trusts": [ca],
        "app_trusts": [ca],
        "acl": snap["acl"],  # checked below: fingerprints of fingerprints
        "app_password": fingerprint(sha256(material.password)),
        "app_material": REVISION,
        "api_token": fingerprint(sha256(token)),
        "api_previous_tokens": 1,
        "app_backend": "redis",
        "primary_key_id": "k2",
        "previous_key_ids": ["k1"],
        "material_reloads": 4,
    }
    assert snap["acl"][APP_USER] == [snap["app_password"]]
    assert set(snap["acl"]) >= set(r.passwords)
    assert unsettled(snap, snap) == []
    # A new certificate in Redis's volume, not reloaded yet, and the app trusting a second CA
    # (its side of a rollover): each shows on its own side only.
    r.server_cert = r.issue_server(r.ca)
    r.deliver()
    other = pki.create_ca("secure-redis other test CA", validity_days=2)
    (material.directory / "ca.crt").write_bytes(pki.trust_bundle([r.ca.cert_pem, other.cert_pem]))
    with StatusApi(token) as api:
        api.status = {"backend": "redis", "encryption": {"primary_key_id": "k2"}}
        rolled = snapshot_of(containers, _redis_files(r), app_facts(material, r, api))
    assert (rolled["redis_trusts"], rolled["app_trusts"]) == ([ca], [ca, f"{serial(other):X}"])
    assert rolled["previous_key_ids"] == [], "none when the app lists none"
    assert rolled["served_serial"] == snap["served_serial"] != rolled["server_serial"]
    assert unsettled(snap, rolled) == [NOT_SERVED, "Redis and the app trust different CAs"]


def test_read_app_facts__output_that_is_not_one_json_object_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match="app: unreadable facts"):
        read_app_facts("app", "Traceback (most recent call last):\n")
    with pytest.raises(ProbeError, match="not one JSON object"):
        read_app_facts("app", "[1, 2]")


def test_app_facts__redis_not_trusted_or_the_api_down_fails_the_run_saying_why(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """What the probe's error then shows (the run's output tail, infra/rotation_probe.py
    _exec): the TLS or connection error, never a secret, and no facts printed as if read.
    (A client certificate Redis refuses does not fail `served`: under TLS 1.3 the client's
    handshake ends before the server's verdict, so `app_cert_issuer` and the round trip are
    what show that.)"""
    r = rotating
    cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    material = app_material(tmp_path, r, cert, token=generate_password(32))
    stranger = pki.create_ca("secure-redis stranger CA", validity_days=2)
    (material.directory / "ca.crt").write_bytes(pki.trust_bundle([stranger.cert_pem]))
    with StatusApi(material.token) as api:
        untrusted = run_app_facts(material, r, api)
    assert untrusted.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr[-500:]
    with StatusApi(material.token) as down:
        pass  # closed: nothing listens on its port any more
    refused = run_app_facts(material, r, down)
    assert refused.returncode != 0
    assert "Connection refused" in refused.stderr, refused.stderr[-500:]
    assert untrusted.stderr.startswith("a new TLS connection from the app to Redis failed")
    assert refused.stderr.startswith("the app's API answering GET /security-status failed")
    for done in (untrusted, refused):
        assert done.stdout == "", "nothing printed as if it had been read"
        assert "Traceback" not in done.stderr, "one line: what rotate.sh shows of it"
        for secret in (material.token, material.password, cert.key_pem.decode()):
            assert secret not in done.stderr


def test_app_facts__redis_at_maxclients_fails_the_run_in_one_line_naming_the_connection(
    rotating: RotatingRedis, tmp_path: Path
) -> None:
    """Attack pass of 2026-12-01 on a10: idle TCP connections from the backend network up to
    `maxclients` (infra/redis_conf.py) made rotate.sh stop at its first snapshot showing the
    tail of a traceback and 'deploy it first'. It still stops (nothing can be checked), with
    the step that failed in one line."""
    r = rotating
    cert = pki.issue_client_certificate(r.ca, APP_USER, validity_days=2)
    material = app_material(tmp_path, r, cert, token=generate_password(32))
    with StatusApi(material.token) as api:
        api.status = {"backend": "redis", "counters": {}}
        assert run_app_facts(material, r, api).returncode == 0, "positive control"
        held = [socket.create_connection(("127.0.0.1", r.port)) for _ in range(MAX_CLIENTS)]
        try:
            done = run_app_facts(material, r, api)
        finally:
            for sock in held:
                sock.close()
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("a new TLS connection from the app to Redis failed: "), lines
