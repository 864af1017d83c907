"""An `up` that leaves a rotation half done says so (infra/applier/status.py).

A CA rollover takes three ups and a password rotation two; a setting change starts them too
(keyAlgorithm or caValidityDays: the CA; passwordLength: every password). Measured on a deployed
stack: after one `up` of a changed keyAlgorithm the app trusted two CAs and nothing said that
two more ups were needed to drop the old one.
"""

from __future__ import annotations

from typing import Any

from infra.applier.state import ResourceState, StackState
from infra.applier.status import unfinished_rotation

CA = "pulumi-python:dynamic/secure-redis:CertificateAuthority"
PASSWORD = "pulumi-python:dynamic/secure-redis:GeneratedPassword"
CONTAINER = "docker:index/container:Container"


def state(*resources: tuple[str, str, dict[str, Any]]) -> StackState:
    return StackState(
        "s",
        {
            f"urn:{name}": ResourceState(kind, name, name, {}, outputs)
            for kind, name, outputs in resources
        },
    )


def test_a_steady_stack__nothing_is_unfinished() -> None:
    steady = state(
        (CA, "tls-ca", {"phase": "steady"}),
        (PASSWORD, "secrets-app-password", {"phase": "steady"}),
        (CONTAINER, "redis", {}),
        (PASSWORD, "from-before-phases", {}),
    )
    assert unfinished_rotation(steady) is None


def test_a_ca_introduced__two_more_ups_and_the_old_ca_still_trusted() -> None:
    line = unfinished_rotation(state((CA, "tls-ca", {"phase": "introduced"})))
    assert line is not None
    assert "tls-ca (new CA trusted beside the old one, not issuing yet)" in line
    assert "Run up 2 more time(s)" in line


def test_passwords_rotating_and_a_ca_promoted__each_named_one_more_up() -> None:
    line = unfinished_rotation(
        state(
            (PASSWORD, "secrets-app-password", {"phase": "rotating"}),
            (CA, "tls-ca", {"phase": "promoted"}),
            (PASSWORD, "secrets-reload-password", {"phase": "steady"}),
        )
    )
    assert line is not None
    assert "secrets-app-password (new password in use, the old one still accepted)" in line
    assert "tls-ca (new CA issues every certificate, the old one still trusted)" in line
    assert "secrets-reload-password" not in line
    assert "Run up 1 more time(s)" in line


def test_the_line_never_carries_a_value() -> None:
    secret = "s3cr3t-password-value-never-printed"
    line = unfinished_rotation(
        state((PASSWORD, "secrets-app-password", {"phase": "rotating", "value": secret}))
    )
    assert line is not None
    assert secret not in line
