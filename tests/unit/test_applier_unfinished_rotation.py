"""An `up` that leaves a rotation half done says so (infra/applier/status.py).

A CA rollover takes three ups and a password rotation two; a setting change starts them too
(keyAlgorithm or caValidityDays: the CA; passwordLength: every password). Measured on a deployed
stack: after one `up` of a changed keyAlgorithm the app trusted two CAs and nothing said that
two more ups were needed to drop the old one.
"""

from __future__ import annotations

from typing import Any

from infra.applier.deployed import API_TOKEN_SUFFIX
from infra.applier.state import ResourceState, StackState
from infra.applier.status import unfinished_rotation
from infra.render import RenderedStack

CA = "pulumi-python:dynamic/secure-redis:CertificateAuthority"
PASSWORD = (
    "pulumi-python:dynamic/secure-redis:GeneratedPassword"  # checkov:skip=CKV_SECRET_6: a type
)
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
    secret = "s3cr3t-password-value-never-printed"  # checkov:skip=CKV_SECRET_6: a marker
    line = unfinished_rotation(
        state((PASSWORD, "secrets-app-password", {"phase": "rotating", "value": secret}))
    )
    assert line is not None
    assert secret not in line


def test_an_api_token_rotating__is_not_an_up_to_run_but_a_retire_once_clients_switched() -> None:
    """`rotate.sh S api-token` leaves the old token accepted on purpose until every client
    has the new one (docs/day2.md). Before, up and status told the operator to run up once
    more "to finish it", which refuses the old token under the clients still sending it."""
    line = unfinished_rotation(state((PASSWORD, "secrets-api-token", {"phase": "rotating"})))
    assert line is not None
    assert "Run up" not in line
    assert "scripts/rotate.sh s api-token-retire" in line
    assert "once every client has the new one" in line
    both = unfinished_rotation(
        state(
            (PASSWORD, "secrets-api-token", {"phase": "rotating"}),
            (PASSWORD, "secrets-app-password", {"phase": "rotating"}),
        )
    )
    assert both is not None
    assert "secrets-app-password (new password in use" in both
    assert "Run up 1 more time(s)" in both
    # The up that finishes the password rotation no longer retires the token (infra/providers/
    # secrets.py holds it until apiTokenRetireGeneration reaches the rotation's generation).
    assert "through every up, until its retire" in both


def test_the_api_token_is_the_one_generated_password_named_so(dev: RenderedStack) -> None:
    """Pins API_TOKEN_SUFFIX to the rendered program (infra/components/secrets.py)."""
    passwords = [r.name for r in dev.resources if r.type == PASSWORD]
    assert len(passwords) > 1, "positive control: the stack's passwords"
    assert [n for n in passwords if n.endswith(API_TOKEN_SUFFIX)] == ["secrets-api-token"]
