"""The dynamic providers through Pulumi's own provider host (`python -m pulumi.dynamic`), over
its real gRPC interface, with what the engine sends at each `pulumi up`: Check(old inputs, new
inputs), then Diff(old outputs, checked inputs), then Create, Update or nothing.

The host runs the providers on the real clock, so the renewal window is reached with a
certificate issued in the past (infra/pki.py takes the issuing time), not by moving the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from infra import pki
from infra.providers.certificates import CertificateAuthorityProvider, LeafCertificateProvider
from infra.providers.secrets import DataKeyringProvider, GeneratedPasswordProvider
from infra.settings import REPO_ROOT
from tests.support.provider_host import (
    PROGRAM_DIR,
    VIRTUALENV,
    LauncherError,
    ProviderHost,
    launch,
    launcher_python,
)

CA_INPUTS = {"keyAlgorithm": "ecdsa-p256", "validityDays": 365, "renewBeforeDays": 90}
CA = CertificateAuthorityProvider()
LEAF = LeafCertificateProvider()
KEYRING = DataKeyringProvider()
PASSWORD = GeneratedPasswordProvider()


@pytest.fixture(scope="module")
def host() -> Iterator[ProviderHost]:
    with launch() as started:
        yield started


@pytest.fixture(scope="module")
def ca(host: ProviderHost) -> dict[str, Any]:
    return first_up(host, CA, {"commonName": "host test CA", **CA_INPUTS}).outputs


def server_inputs(ca: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "caCertPem": ca["certPem"],
        "caKeyPem": ca["keyPem"],
        "commonName": "redis",
        "usage": "server",
        "dnsNames": ["redis"],
        "ipAddresses": ["127.0.0.1"],
        "keyAlgorithm": "ecdsa-p256",
        "validityDays": 90,
        "renewBeforeDays": 30,
        "renewalGeneration": 0,
        **changes,
    }


@dataclass(frozen=True)
class Up:
    """A resource as an `up` leaves it in the state."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def first_up(host: ProviderHost, provider: Any, news: dict[str, Any]) -> Up:
    """Check then Create, as the engine does for a new resource."""
    inputs, failures = host.check(provider, {}, news)
    assert failures == []
    id_, outputs = host.create(inputs)
    return Up(id_, inputs, outputs)


def next_up(
    host: ProviderHost, provider: Any, prior: Up, news: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Check then Diff, as the engine does on every later up; returns (diff, checked inputs)."""
    inputs, failures = host.check(provider, prior.inputs, news)
    assert failures == []
    return host.diff(prior.id, prior.outputs, inputs), inputs


def issued_days_ago(host: ProviderHost, ca: dict[str, Any], days: int) -> Up:
    """The server certificate of `server_inputs(ca)` as a past up left it: issued `days` ago
    for 90 days (renewBeforeDays=30)."""
    inputs, _ = host.check(LEAF, {}, server_inputs(ca))
    old = pki.issue_server_certificate(
        pki.CertifiedKey(str(ca["certPem"]).encode(), str(ca["keyPem"]).encode()),
        "redis",
        dns_names=["redis"],
        ip_addresses=["127.0.0.1"],
        algorithm="ecdsa-p256",
        validity_days=90,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=days),
    )
    return Up(
        "old", inputs, {**inputs, "certPem": old.cert_pem.decode(), "keyPem": old.key_pem.decode()}
    )


def serial(outputs: dict[str, Any]) -> int:
    return x509.load_pem_x509_certificate(str(outputs["certPem"]).encode()).serial_number


def test_launcher__the_program_dir_finds_the_projects_virtualenv() -> None:
    """Pulumi.yaml's `virtualenv: .venv`, resolved in infra/ as the engine's launcher does."""
    python = launcher_python(PROGRAM_DIR, VIRTUALENV)
    assert python == PROGRAM_DIR / ".venv" / "bin" / "python"
    assert python.parent.parent.resolve() == (REPO_ROOT / ".venv").resolve()


def test_launcher__from_the_repository_root_too() -> None:
    assert (
        launcher_python(REPO_ROOT, VIRTUALENV).parent.parent.resolve()
        == (REPO_ROOT / ".venv").resolve()
    )


def test_launcher__a_program_dir_without_the_link_cannot_start_the_host(tmp_path: Any) -> None:
    """What pulumi/pulumi#7061 looks like without infra/.venv: the launcher gives up."""
    with pytest.raises(LauncherError, match="doesn't appear to be a virtual environment"):
        launcher_python(tmp_path, VIRTUALENV)


def test_host__started_in_infra_imports_the_providers_by_class_reference(
    host: ProviderHost,
) -> None:
    """The host unpickles providers with dill by class reference: it must import `infra`
    from infra/ with the linked virtualenv's interpreter, and nothing else on its path."""
    assert host.python == PROGRAM_DIR / ".venv" / "bin" / "python"
    assert len(first_up(host, PASSWORD, {"length": 24}).outputs["value"]) == 24


def test_host__configure_refuses_secrets_as_the_engine_expects(host: ProviderHost) -> None:
    assert host.configure() is False


def test_host__first_up_creates_a_certificate_signed_by_the_ca(
    host: ProviderHost, ca: dict[str, Any]
) -> None:
    outputs = first_up(host, LEAF, server_inputs(ca)).outputs
    assert pki.verify_chain(str(outputs["certPem"]).encode(), str(ca["certPem"]).encode())
    assert pki.key_matches_certificate(
        str(outputs["certPem"]).encode(), str(outputs["keyPem"]).encode()
    )


def test_host__noop_up_keeps_the_certificate(host: ProviderHost, ca: dict[str, Any]) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    diff, _ = next_up(host, LEAF, up, server_inputs(ca))
    assert diff.none, diff
    assert diff.replaces == ()
    # Read (refresh) returns what the state holds: nothing lives outside it.
    read_id, read = host.read(up.id, up.outputs)
    assert (read_id, serial(read)) == (up.id, serial(up.outputs))


def test_host__inside_the_renewal_window_the_certificate_is_replaced(
    host: ProviderHost, ca: dict[str, Any]
) -> None:
    old = issued_days_ago(host, ca, 61)  # 29 days left, inside renewBeforeDays=30
    diff, checked = next_up(host, LEAF, old, server_inputs(ca))
    assert diff.replaces == ("certPem",), "a certificate due for renewal must be replaced"
    assert diff.delete_before_replace is False, "the new certificate exists before the old goes"
    _, renewed = host.create(checked)
    assert serial(renewed) != serial(old.outputs)
    assert pki.certificate_expiry(str(renewed["certPem"]).encode()) > pki.certificate_expiry(
        str(old.outputs["certPem"]).encode()
    )


def test_host__outside_the_window_an_old_certificate_is_kept(
    host: ProviderHost, ca: dict[str, Any]
) -> None:
    old = issued_days_ago(host, ca, 59)  # 31 days left, outside renewBeforeDays=30
    diff, _ = next_up(host, LEAF, old, server_inputs(ca))
    assert diff.none, diff


@pytest.mark.parametrize(
    ("change", "replaced"),
    [
        ({"dnsNames": ["redis", "cache"]}, "dnsNames"),
        ({"keyAlgorithm": "ecdsa-p384"}, "keyAlgorithm"),
        ({"validityDays": 60}, "validityDays"),
    ],
)
def test_host__a_changed_input_replaces_the_certificate(
    host: ProviderHost, ca: dict[str, Any], change: dict[str, Any], replaced: str
) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    diff, checked = next_up(host, LEAF, up, server_inputs(ca, **change))
    assert replaced in diff.replaces
    _, new = host.create(checked)
    assert serial(new) != serial(up.outputs)


def test_host__renew_before_days_is_an_update_that_keeps_the_certificate(
    host: ProviderHost, ca: dict[str, Any]
) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    diff, checked = next_up(host, LEAF, up, server_inputs(ca, renewBeforeDays=20))
    assert not diff.none
    assert diff.replaces == ()
    updated = host.update(up.id, up.outputs, checked)
    assert serial(updated) == serial(up.outputs)
    assert updated["renewBeforeDays"] == 20


def test_host__forced_renewal_by_renewal_generation(host: ProviderHost, ca: dict[str, Any]) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    diff, checked = next_up(host, LEAF, up, server_inputs(ca, renewalGeneration=1))
    assert diff.replaces == ("renewalGeneration",)
    _, renewed = host.create(checked)
    assert serial(renewed) != serial(up.outputs)
    assert renewed["renewalGeneration"] == 1


def test_host__state_from_before_renewal_generation_existed_is_not_renewed(
    host: ProviderHost, ca: dict[str, Any]
) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    del up.outputs["renewalGeneration"]
    diff, _ = next_up(host, LEAF, up, server_inputs(ca))
    assert diff.none, diff


def test_host__a_new_ca_replaces_the_leaf(host: ProviderHost, ca: dict[str, Any]) -> None:
    up = first_up(host, LEAF, server_inputs(ca))
    other_ca = first_up(host, CA, {"commonName": "rolled CA", **CA_INPUTS}).outputs
    diff, _ = next_up(host, LEAF, up, server_inputs(other_ca))
    assert set(diff.replaces) == {"caCertPem", "caKeyPem"}


def test_host__key_generation_bump_updates_the_keyring_in_place(host: ProviderHost) -> None:
    news = {"generation": 1, "keepPrevious": 1}
    up = first_up(host, KEYRING, news)
    first = up.outputs
    same, _ = next_up(host, KEYRING, up, news)
    assert same.none
    diff, checked = next_up(host, KEYRING, up, {"generation": 2, "keepPrevious": 1})
    assert not diff.none
    assert diff.replaces == (), "a replaced keyring would lose every entry"
    second = host.update(up.id, first, checked)
    assert second["primaryKey"] != first["primaryKey"]
    assert second["previousKeys"] == first["primaryKey"]
    # Numbers arrive as doubles; check keeps them integral, and refuses going back.
    assert checked["generation"] == 2
    _, failures = host.check(KEYRING, checked, {"generation": 1, "keepPrevious": 1})
    assert [p for p, _ in failures] == ["generation"]


def test_host__password_is_kept_unless_its_length_changes(host: ProviderHost) -> None:
    up = first_up(host, PASSWORD, {"length": 24})
    id_, outputs = up.id, up.outputs
    same, _ = next_up(host, PASSWORD, up, {"length": 24})
    assert same.none
    longer, checked = next_up(host, PASSWORD, up, {"length": 32})
    # A new length rotates in place (two phases, infra/providers/secrets.py), never replaces:
    # the old value stays accepted beside the new one until the next up.
    assert longer.replaces == ()
    assert not longer.none
    new = host.update(id_, outputs, checked)
    assert len(new["value"]) == 32
    assert new["value"] != outputs["value"]
    assert new["previous"] == outputs["value"]
    host.delete(id_, outputs)  # nothing outside the state: delete succeeds and does nothing
