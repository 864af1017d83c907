"""The scripts infra/rotation_probe.py runs inside the stack's containers, run on this host
against a real TLS redis-server, a copy of the app's material volume and a stand-in for the
app's API (tests/support/app_material.py): one exec per container gives every fact a snapshot
needs, and nothing secret leaves the container."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import pki
from infra.redis_acl import APP_USER
from infra.rotation_probe import (
    ROUND_TRIP,
    ProbeError,
    bundle_serials,
    cert_serial,
    files_command,
    served_serial,
    split_files,
)
from infra.secretgen import generate_password
from tests.support.app_material import StatusApi, app_facts, app_material, run_app_facts
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
    return subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, api.base, str(material_dir), key, uuid.uuid4().hex],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


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
