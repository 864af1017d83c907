"""The names Pulumi gives resources: type tokens and URNs, defined once.

The render (infra/mock_engine.py), the local applier (infra/applier/), the policies
(policies/rules/_model.py, policies/records.py) and the tests all name resource types and read
URNs; a token spelt twice can drift (a typo in one copy silently matches nothing), so every
one of them imports it from here.
"""

from __future__ import annotations

from typing import Final, TypeGuard

# pulumi-docker's resource types.
CONTAINER: Final = "docker:index/container:Container"
NETWORK: Final = "docker:index/network:Network"
VOLUME: Final = "docker:index/volume:Volume"
IMAGE: Final = "docker:index/image:Image"
REMOTE_IMAGE: Final = "docker:index/remoteImage:RemoteImage"
REGISTRY_IMAGE: Final = "docker:index/registryImage:RegistryImage"
SERVICE: Final = "docker:index/service:Service"
SERVICE_CONFIG: Final = "docker:index/serviceConfig:ServiceConfig"
SWARM_SECRET: Final = "docker:index/secret:Secret"  # noqa: S105 - a type token
PLUGIN: Final = "docker:index/plugin:Plugin"
TAG: Final = "docker:index/tag:Tag"
DOCKER_PROVIDER: Final = "pulumi:providers:docker"
# Other providers' types the policies judge when a program uses them.
LOCAL_COMMAND: Final = "command:local:Command"
REMOTE_COMMAND: Final = "command:remote:Command"
RANDOM_PASSWORD: Final = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type
TLS_PRIVATE_KEY: Final = "tls:index/privateKey:PrivateKey"
TLS_SELF_SIGNED_CERT: Final = "tls:index/selfSignedCert:SelfSignedCert"
TLS_LOCALLY_SIGNED_CERT: Final = "tls:index/locallySignedCert:LocallySignedCert"
# The engine's own.
STACK: Final = "pulumi:pulumi:Stack"
STACK_REFERENCE: Final = "pulumi:pulumi:StackReference"
# Dynamic resources carry their provider's language in the type token:
# `pulumi-python:dynamic/<module>:<Name>` (this program's certificates, passwords and keys).
PYTHON_DYNAMIC_PREFIX: Final = "pulumi-python:dynamic"
DYNAMIC: Final = (f"{PYTHON_DYNAMIC_PREFIX}*", "pulumi-nodejs:dynamic*")
"""fnmatch patterns of every dynamic resource type, whatever its provider's language."""

_URN_PREFIX: Final = "urn:pulumi:"


def make_urn(stack: str, project: str, type_: str, name: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` (`type_` may be a parent$child chain)."""
    return f"{_URN_PREFIX}{stack}::{project}::{type_}::{name}"


def is_urn(urn: object) -> TypeGuard[str]:
    """Has the four parts (the name may itself contain "::")."""
    return isinstance(urn, str) and urn.startswith(_URN_PREFIX) and urn.count("::") >= 3


def urn_parts(urn: str) -> tuple[str, str]:
    """(stack, project) of `urn:pulumi:<stack>::<project>::<type>::<name>`; "" where absent."""
    if not urn.startswith(_URN_PREFIX):
        return "", ""
    parts = urn.removeprefix(_URN_PREFIX).split("::")
    return parts[0], parts[1] if len(parts) > 1 else ""


def urn_type(urn: str) -> str:
    """The resource's own type: the last link of the URN's parent$child type chain."""
    if not is_urn(urn):
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    qualified = urn.removeprefix(_URN_PREFIX).split("::", 3)[2]
    return qualified.rsplit("$", 1)[-1]
