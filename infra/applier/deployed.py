"""Pure: what a stack runs with, read from its state without opening anything else, for the
commands that judge a setting against it (infra/stack_config.py `set`). Light on purpose: no
certificate parsing, so `stack_config` loads no more than it did (tests/unit/
test_operator_imports.py); the state's type is only named."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from infra.naming import object_name
from infra.pulumi_names import CONTAINER

if TYPE_CHECKING:
    from infra.applier.state import ResourceState, StackState

CA_TYPE: Final = "CertificateAuthority"
KEYRING_TYPE: Final = "DataKeyring"
# The API token's GeneratedPassword (infra/components/secrets.py: `<secrets>-api-token`).
API_TOKEN_SUFFIX: Final = "-api-token"  # noqa: S105 - a resource name, not a token
# The app's key prefix, as its container is given it (infra/components/app_image.py).
KEY_PREFIX_ENV: Final = "REDIS_KEY_PREFIX"

# The settings a stack only ever raises, and where its state shows the value it runs with:
# (resource type, input, whether the resource is the API token); the highest one recorded.
# Lowered by hand, each was accepted and then refused by every up (dataKeyGeneration) or
# started a rotation unasked, and `rotate.sh S certs` on a lowered certRenewalGeneration raised
# it back to the deployed value, an up that renewed nothing, and failed.
_RAISED_ONLY: Final = {
    "dataKeyGeneration": (KEYRING_TYPE, "generation", False),
    "caRolloverGeneration": (CA_TYPE, "rolloverGeneration", False),
    "certRenewalGeneration": ("LeafCertificate", "renewalGeneration", False),
    "passwordRotationGeneration": ("GeneratedPassword", "rotationGeneration", False),
    "apiTokenRotationGeneration": ("GeneratedPassword", "rotationGeneration", True),
    "apiTokenRetireGeneration": ("GeneratedPassword", "retireGeneration", True),
}
RAISED_ONLY_SETTINGS: Final = frozenset(_RAISED_ONLY)


def deployed_generation(state: StackState, setting: str) -> int | None:
    """The value of a RAISED_ONLY_SETTINGS setting the stack was last deployed with; None: the
    state records none (or not as this code writes it: the up's own checks judge then)."""
    kind, key, api_token = _RAISED_ONLY[setting]
    found: list[int] = []
    for resource in state.resources.values():
        if resource.type.rsplit(":", 1)[-1] != kind:
            continue
        if kind == "GeneratedPassword" and resource.name.endswith(API_TOKEN_SUFFIX) != api_token:
            continue
        try:
            found.append(int(resource.inputs[key]))
        except (KeyError, TypeError, ValueError):
            continue
    return max(found, default=None)


def container_record(state: StackState | None, container: str) -> ResourceState | None:
    """The state's record of the container named `container`, if it has one."""
    for resource in (state.resources if state else {}).values():
        if resource.type == CONTAINER and resource.inputs.get("name") == container:
            return resource
    return None


def recorded_key_prefix(state: StackState, stack: str) -> str | None:
    """The key prefix the stack's app was last deployed with; None: no such record."""
    app = container_record(state, object_name(stack, "app"))
    if app is None:
        return None
    for entry in app.inputs.get("envs") or ():
        name, _, value = str(entry).partition("=")
        if name == KEY_PREFIX_ENV:
            return value
    return None


__all__ = [
    "API_TOKEN_SUFFIX",
    "CA_TYPE",
    "KEYRING_TYPE",
    "KEY_PREFIX_ENV",
    "RAISED_ONLY_SETTINGS",
    "container_record",
    "deployed_generation",
    "recorded_key_prefix",
]
