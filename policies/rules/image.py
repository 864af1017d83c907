"""Images: pinned references, TLS verification on, trusted registries (docs/security-catalog.md)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from policies.rules._model import (
    ADVISORY,
    CONTAINER,
    IMAGE,
    REGISTRY_IMAGE,
    REMOTE_IMAGE,
    SERVICE,
    Resource,
    ResourceRule,
)
from policies.rules._props import envs, flag, label, mapping, strings, text

_IMAGE_ID: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_DIGEST: Final = re.compile(r"@sha256:[0-9a-f]{64}$")
# Settings that switch TLS verification off for a build or runtime tool (IMAGE-03).
_ZERO: Final = frozenset({"0"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})
_ANY: Final = frozenset[str]()


def _is(values: frozenset[str]) -> Callable[[str], bool]:
    return lambda value: value.strip().lower() in values


def _set_unless(values: frozenset[str]) -> Callable[[str], bool]:
    return lambda value: value.strip().lower() not in values | {""}


_NO_VERIFY: Final[dict[str, Callable[[str], bool]]] = {
    "PYTHONHTTPSVERIFY": _is(_ZERO),
    "NODE_TLS_REJECT_UNAUTHORIZED": _is(_ZERO),
    "GIT_SSL_NO_VERIFY": _set_unless(_FALSE),
    "PIP_TRUSTED_HOST": _set_unless(_ANY),
    "NPM_CONFIG_STRICT_SSL": _is(_FALSE),
    "CURL_INSECURE": _set_unless(_FALSE),
}


def _reference_parts(reference: str) -> tuple[str, str, str]:
    """(registry, repository, tag) of an image reference; tag "" when absent."""
    name = reference.split("@", 1)[0]
    first, _, rest = name.partition("/")
    registry = "docker.io"
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
    return registry, repository, tag


def container_pinned(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    image = text(resource.props.get("image"), "image") or ""
    if not (_IMAGE_ID.match(image) or _DIGEST.search(image)):
        yield (
            f"{label(resource)} must reference its image by ID or digest (sha256:..., or "
            f"name@sha256:..., e.g. from RemoteImage.repoDigest or Image.repoDigest), not by a "
            f"mutable tag (CIS Docker 5.28)."
        )


def tag_not_latest(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    key = "imageName" if resource.type == IMAGE else "name"
    reference = text(resource.props.get(key), key) or ""
    if _DIGEST.search(reference):
        return
    _, _, tag = _reference_parts(reference)
    if not tag or tag == "latest":
        yield (
            f"{label(resource)} must name an explicit, immutable tag or digest in {key}; "
            f'"latest" or no tag changes under you (CKV_DOCKER_7).'
        )


def _build_settings(resource: Resource) -> list[tuple[str, str]]:
    build = mapping(resource.props.get("build"), "build")
    key = "args" if resource.type == IMAGE else "buildArgs"
    args = mapping(build.get(key), f"build.{key}")
    return [(k, v) for k, v in args.items() if isinstance(v, str)]


def tls_verification_enabled(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    runs = resource.type in (CONTAINER, SERVICE)  # a service in a container's shape: envs
    pairs = envs(resource.props) if runs else _build_settings(resource)
    off = sorted({k for k, v in pairs if k.upper() in _NO_VERIFY and _NO_VERIFY[k.upper()](v)})
    if off:
        where = "envs" if runs else "build arguments"
        yield (
            f"{label(resource)} must not switch TLS verification off; remove "
            f"{', '.join(off)} from its {where}."
        )


def registry_push_verified(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    if flag(resource.props.get("insecureSkipVerify"), "insecureSkipVerify") is True:
        yield (
            f"{label(resource)} must verify the registry's TLS certificate; remove "
            f"insecureSkipVerify: true (anyone on the path could take the pushed image)."
        )


def registry_trusted(resource: Resource, config: Mapping[str, Any]) -> Iterator[str]:
    allowed = {
        r.lower()
        for r in strings(config.get("allowedRegistries"), "policy config allowedRegistries")
    }
    if resource.type == REMOTE_IMAGE:
        registries = [_reference_parts(text(resource.props.get("name"), "name") or "")[0]]
    else:
        registry = mapping(resource.props.get("registry"), "registry")
        registries = [text(registry.get("server"), "registry.server") or ""]
        if resource.props.get("skipPush") is not True:
            registries.append(
                _reference_parts(text(resource.props.get("imageName"), "imageName") or "")[0]
            )
    untrusted = [r for r in registries if r and r.lower() not in allowed]
    if untrusted:
        yield (
            f"{label(resource)} should use a registry from allowedRegistries in the policy "
            f"configuration (CIS Docker 4.2)."
        )


RULES: Final = (
    ResourceRule(
        name="image-registry-tls-verified",
        description="Images are pushed to registries whose TLS certificate is verified.",
        resource_types=(REGISTRY_IMAGE,),
        check=registry_push_verified,
        refs=("IMAGE-03",),
    ),
    ResourceRule(
        name="image-container-pinned",
        description="Containers run images pinned by ID or digest.",
        resource_types=(CONTAINER,),
        check=container_pinned,
        refs=("IMAGE-01", "cis-docker-5.28"),
    ),
    ResourceRule(
        name="image-tag-not-latest",
        description="Built and pulled images have an explicit tag.",
        resource_types=(IMAGE, REMOTE_IMAGE),
        check=tag_not_latest,
        refs=("IMAGE-01", "CKV_DOCKER_7"),
    ),
    ResourceRule(
        name="image-tls-verification-enabled",
        description="Builds and containers keep TLS certificate verification on.",
        resource_types=(CONTAINER, IMAGE, REMOTE_IMAGE),
        check=tls_verification_enabled,
        refs=("IMAGE-03",),
    ),
    ResourceRule(
        name="image-registry-trusted",
        description="Images come from trusted registries.",
        resource_types=(IMAGE, REMOTE_IMAGE),
        check=registry_trusted,
        refs=("IMAGE-04", "cis-docker-4.2"),
        enforcement=ADVISORY,
        config_schema={
            "allowedRegistries": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["docker.io"],
                "description": "Registries images may come from.",
            }
        },
    ),
)
