"""The exporter's copies of the certificates no running process reports
(infra/components/exporter.py): the certificate each identity is given, public, no key, and
named to the exporter the way it reads them."""

from __future__ import annotations

import pytest
from cryptography import x509

from infra.components.exporter import ROTATING_USERS_ENV, WATCHED_CERTIFICATES
from infra.components.material import PUBLIC_MODE
from infra.render import RenderedStack
from secure_cache import redis_exporter
from tests.unit.conftest import container, uploads

# identity -> the initialiser of the volume it reads its own certificate from
IDENTITY_VOLUMES = {
    "healthcheck": "redis-init",
    "reload": "reload-init",
    "rotation": "rotation-init",
}


def _exporter_files(stack: RenderedStack) -> dict[str, dict[str, str]]:
    record = container(stack, "redis-exporter-init").to_record(redact=False)
    return {u["file"].rsplit("/", 1)[-1]: u for u in record["props"]["uploads"]}


def test_watched__are_every_client_identity_without_a_process_reporting_it(
    stack: RenderedStack,
) -> None:
    """The app and the exporter report their own certificates; every other client certificate
    the stack issues is watched (read from the rendered stack, so an identity added to
    infra/components/tls.py without a copy for the exporter fails here)."""
    issued = {
        r.name.removeprefix("tls-").removesuffix("-client")
        for r in stack.resources
        if r.type.endswith(":LeafCertificate") and r.name.endswith("-client")
    }
    assert {"app", "exporter"} <= issued, "positive control: the leaves were found"
    assert set(WATCHED_CERTIFICATES) == set(IDENTITY_VOLUMES) == issued - {"app", "exporter"}


def test_watched__variables_are_the_ones_the_exporter_reads() -> None:
    assert dict(redis_exporter.WATCHED_CERTIFICATES) == WATCHED_CERTIFICATES
    assert redis_exporter.ROTATING_USERS_ENV == ROTATING_USERS_ENV


@pytest.mark.parametrize("identity", sorted(IDENTITY_VOLUMES))
def test_exporter_copy__is_the_certificate_the_identity_is_given(
    stack: RenderedStack, identity: str
) -> None:
    own = container(stack, IDENTITY_VOLUMES[identity]).to_record(redact=False)
    (given,) = [
        u["content"] for u in own["props"]["uploads"] if u["file"].endswith(f"/{identity}.crt")
    ]
    copy = _exporter_files(stack)[f"{identity}.crt"]
    assert copy["content"] == given
    assert copy["permissions"] == PUBLIC_MODE
    cert = x509.load_pem_x509_certificate(copy["content"].encode())
    assert cert.subject.rfc4514_string() == f"CN={identity}"


def test_exporter_volume__holds_no_key_but_its_own(stack: RenderedStack) -> None:
    files = _exporter_files(stack)
    assert {f"{identity}.crt" for identity in IDENTITY_VOLUMES} <= set(files), "positive control"
    keys = {name for name, u in files.items() if "PRIVATE KEY" in u["content"]}
    assert keys == {"exporter.key"}


def test_exporter__is_told_where_each_copy_is(stack: RenderedStack) -> None:
    envs = dict(e.split("=", 1) for e in container(stack, "redis-exporter").props["envs"])
    delivered = uploads(container(stack, "redis-exporter-init"))
    for identity, var in WATCHED_CERTIFICATES.items():
        assert envs[var].rsplit("/", 1)[-1] == f"{identity}.crt"
        assert f"{identity}.crt" in delivered
    assert envs[ROTATING_USERS_ENV].rsplit("/", 1)[-1] in delivered
