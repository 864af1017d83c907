"""The dynamic providers, called directly (no engine): create, check, diff, update, read."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509

from infra import pki
from infra.providers.certificates import (
    CertificateAuthorityProvider,
    LeafCertificateProvider,
)
from infra.providers.secrets import DataKeyringProvider, GeneratedPasswordProvider
from infra.redis_acl import password_hash
from infra.render import RenderedStack
from tests.unit.conftest import STACKS, rendered

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def _clock(moment: dt.datetime) -> Any:
    return lambda: moment


CA_INPUTS: dict[str, Any] = {
    "commonName": "test CA",
    "keyAlgorithm": "ecdsa-p256",
    "validityDays": 365,
    "renewBeforeDays": 90,
}


@pytest.fixture(scope="module")
def ca_state() -> dict[str, Any]:
    return dict(CertificateAuthorityProvider(_clock(NOW)).create(dict(CA_INPUTS)).outs or {})


def _server_inputs(ca: dict[str, Any], **changes: Any) -> dict[str, Any]:
    inputs = {
        "caCertPem": ca["certPem"],
        "caKeyPem": ca["keyPem"],
        "commonName": "redis",
        "usage": "server",
        "dnsNames": ["redis", "secure-redis-dev-redis"],
        "ipAddresses": ["127.0.0.1"],
        "keyAlgorithm": "ecdsa-p256",
        "validityDays": 90,
        "renewBeforeDays": 30,
    }
    inputs.update(changes)
    return inputs


@pytest.fixture(scope="module")
def server_state(ca_state: dict[str, Any]) -> dict[str, Any]:
    provider = LeafCertificateProvider(_clock(NOW))
    return dict(provider.create(_server_inputs(ca_state)).outs or {})


def test_ca_create__returns_a_ca_and_its_key(ca_state: dict[str, Any]) -> None:
    cert = pki.load_certificate(ca_state["certPem"].encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert pki.key_matches_certificate(ca_state["certPem"].encode(), ca_state["keyPem"].encode())


def test_ca_create__records_expiry(ca_state: dict[str, Any]) -> None:
    expected = pki.certificate_expiry(ca_state["certPem"].encode()).isoformat()
    assert ca_state["notAfter"] == expected


def test_leaf_create__is_signed_by_the_ca(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    leaf, ca = server_state["certPem"].encode(), ca_state["certPem"].encode()
    assert pki.verify_chain(leaf, ca, now=NOW + dt.timedelta(days=1))


def test_leaf_create__carries_the_dns_names(server_state: dict[str, Any]) -> None:
    cert = pki.load_certificate(server_state["certPem"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["redis", "secure-redis-dev-redis"]


def test_leaf_create__echoes_inputs_for_later_diffs(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    for key, value in _server_inputs(ca_state).items():
        assert server_state[key] == value, f"state must keep input {key} for diff"


def test_diff__no_change_far_from_expiry(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    provider = LeafCertificateProvider(_clock(NOW + dt.timedelta(days=10)))
    result = provider.diff("id", server_state, _server_inputs(ca_state))
    assert (result.changes, result.replaces) == (False, [])


def test_diff__replaces_inside_the_renewal_window(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    # Issued at NOW for 90 days, renewed 30 days before expiry: day 61 is inside the window.
    provider = LeafCertificateProvider(_clock(NOW + dt.timedelta(days=61)))
    result = provider.diff("id", server_state, _server_inputs(ca_state))
    assert result.changes is True
    assert result.replaces == ["certPem"]
    assert result.delete_before_replace is False


def test_diff__replaces_an_expired_certificate(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    provider = LeafCertificateProvider(_clock(NOW + dt.timedelta(days=400)))
    assert provider.diff("id", server_state, _server_inputs(ca_state)).replaces == ["certPem"]


def test_ca_diff__rolls_over_inside_its_renewal_window(ca_state: dict[str, Any]) -> None:
    # Never replaced (every certificate would be untrusted at once): the window starts a
    # rollover, an in-place update (tests/unit/test_infra_rotation_providers.py).
    provider = CertificateAuthorityProvider(_clock(NOW + dt.timedelta(days=300)))
    result = provider.diff("id", ca_state, dict(CA_INPUTS))
    assert result.changes
    assert result.replaces == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dnsNames", ["redis", "other"]),
        ("keyAlgorithm", "ecdsa-p384"),
        ("validityDays", 30),
        ("caCertPem", "-----BEGIN CERTIFICATE-----\nother\n-----END CERTIFICATE-----\n"),
    ],
)
def test_diff__replaces_when_an_input_changes(
    ca_state: dict[str, Any], server_state: dict[str, Any], key: str, value: Any
) -> None:
    provider = LeafCertificateProvider(_clock(NOW))
    result = provider.diff("id", server_state, _server_inputs(ca_state, **{key: value}))
    assert result.replaces == [key]


def test_diff__renewal_window_change_updates_in_place(
    ca_state: dict[str, Any], server_state: dict[str, Any]
) -> None:
    provider = LeafCertificateProvider(_clock(NOW))
    news = _server_inputs(ca_state, renewBeforeDays=20)
    result = provider.diff("id", server_state, news)
    assert (result.changes, result.replaces) == (True, [])
    updated = provider.update("id", server_state, news).outs or {}
    assert updated["renewBeforeDays"] == 20
    assert updated["certPem"] == server_state["certPem"], "an update must keep the certificate"


def test_check__normalises_engine_floats(ca_state: dict[str, Any]) -> None:
    checked = LeafCertificateProvider().check({}, _server_inputs(ca_state, validityDays=90.0))
    assert checked.failures == []
    assert checked.inputs["validityDays"] == 90
    assert isinstance(checked.inputs["validityDays"], int)


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"keyAlgorithm": "rsa-1024"}, "keyAlgorithm"),
        ({"validityDays": 0}, "validityDays"),
        ({"renewBeforeDays": 90}, "renewBeforeDays"),
        ({"usage": "both"}, "usage"),
        ({"dnsNames": [], "ipAddresses": []}, "dnsNames"),
    ],
)
def test_check__rejects_bad_inputs(
    ca_state: dict[str, Any], change: dict[str, Any], failing: str
) -> None:
    checked = LeafCertificateProvider().check({}, _server_inputs(ca_state, **change))
    assert [f.property for f in checked.failures] == [failing]


def test_read__returns_the_stored_state(server_state: dict[str, Any]) -> None:
    result = LeafCertificateProvider().read("abc", dict(server_state))
    assert (result.id, result.outs) == ("abc", server_state)


def test_password_create__has_length_and_hash() -> None:
    outs = GeneratedPasswordProvider().create({"length": 48}).outs or {}
    assert len(outs["value"]) == 48
    assert outs["value"].isalnum()
    assert outs["aclHash"] == password_hash(outs["value"])


def test_password_diff__rotates_in_place_on_length_change() -> None:
    # Never replaced: a new length starts a two-phase rotation (old and new both accepted).
    olds = GeneratedPasswordProvider().create({"length": 24}).outs or {}
    result = GeneratedPasswordProvider().diff("id", olds, {"length": 48})
    assert result.changes
    assert result.replaces == []


def test_password_check__rejects_short_lengths() -> None:
    assert GeneratedPasswordProvider().check({}, {"length": 8}).failures


def test_keyring_create__is_a_32_byte_key() -> None:
    outs = DataKeyringProvider().create({"generation": 1, "keepPrevious": 1}).outs or {}
    assert len(base64.b64decode(outs["primaryKey"], validate=True)) == 32
    assert outs["previousKeys"] == ""


def test_keyring_rotation__keeps_the_old_key_readable() -> None:
    provider = DataKeyringProvider()
    olds = provider.create({"generation": 1, "keepPrevious": 1}).outs or {}
    news = {"generation": 2, "keepPrevious": 1}
    assert provider.diff("id", olds, news).replaces == [], "rotation must not replace"
    rotated = provider.update("id", olds, news).outs or {}
    assert rotated["primaryKey"] != olds["primaryKey"]
    assert rotated["previousKeys"] == olds["primaryKey"]
    assert rotated["revision"] != olds["revision"]


def test_keyring_retirement__drops_previous_keys() -> None:
    provider = DataKeyringProvider()
    first = provider.create({"generation": 1, "keepPrevious": 1}).outs or {}
    rotated = provider.update("id", first, {"generation": 2, "keepPrevious": 1}).outs or {}
    retired = provider.update("id", rotated, {"generation": 2, "keepPrevious": 0}).outs or {}
    assert retired["primaryKey"] == rotated["primaryKey"]
    assert retired["previousKeys"] == ""


def test_keyring_check__refuses_a_lower_generation() -> None:
    failures = (
        DataKeyringProvider()
        .check({"generation": 3.0}, {"generation": 2, "keepPrevious": 1})
        .failures
    )
    assert [f.property for f in failures] == ["generation"]


@pytest.mark.parametrize("stack_name", STACKS)
@pytest.mark.parametrize(
    ("logical", "secret"),
    [
        ("tls-ca", "keyPem"),
        ("tls-redis-server", "keyPem"),
        ("tls-app-client", "keyPem"),
        ("tls-healthcheck-client", "keyPem"),
        ("secrets-app-password", "value"),
        ("secrets-healthcheck-password", "value"),
        ("secrets-data-keyring", "primaryKey"),
        ("secrets-data-keyring", "previousKeys"),
    ],
)
def test_dynamic_resource__marks_its_secret_output(
    stack_name: str, logical: str, secret: str
) -> None:
    stack: RenderedStack = rendered(stack_name)
    resource = next(r for r in stack.resources if r.name == logical)
    assert secret in resource.options["additionalSecretOutputs"], (
        f"{resource.urn}: {secret} must be listed in additionalSecretOutputs"
    )
    assert secret in resource.secret_outputs, f"{resource.urn}: {secret} must come back secret"
