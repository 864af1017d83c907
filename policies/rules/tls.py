"""PKI: strong keys, correct certificate profiles, unique keys, no CA key in a container."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from infra.proppath import string_leaves
from policies.rules._environment import floor
from policies.rules._model import (
    DYNAMIC,
    SERVICE,
    TLS_LOCALLY_SIGNED_CERT,
    TLS_PRIVATE_KEY,
    TLS_SELF_SIGNED_CERT,
    Resource,
    ResourceRule,
    StackRule,
    Unreadable,
    Violation,
    kind_of,
)
from policies.rules._props import (
    envs,
    label,
    number,
    reading,
    redis_label,
    strings,
    text,
    uploads,
)
from policies.rules._redisconf import aliases, redis_servers
from policies.rules._secrets import private_key_blocks
from policies.rules._service_shape import in_service_words, task_containers
from policies.rules._x509 import (
    MIN_RSA_BITS,
    certificate_blocks,
    parse_certificate,
    private_key_public_bytes,
)
from policies.rules.clients import redis_urls

_KEY_ALGORITHM: Final = re.compile(r"(?i)^(rsa-?(\d+)|ecdsa-?p(\d+)|ed25519|ed448)$")
_STRONG_CURVE_BITS: Final = frozenset({256, 384, 521})


def _weak_algorithm(value: str) -> bool:
    match = _KEY_ALGORITHM.match(value.strip())
    if not match:
        return True
    if match.group(2):
        return int(match.group(2)) < MIN_RSA_BITS
    if match.group(3):
        return int(match.group(3)) not in _STRONG_CURVE_BITS
    return False


def _declared_key_weak(resource: Resource) -> bool:
    """A key resource's declared algorithm and size (pulumi-tls PrivateKey, or a dynamic
    certificate/key resource's keyAlgorithm)."""
    props = resource.props
    if resource.type == TLS_PRIVATE_KEY:
        algorithm = (text(props.get("algorithm"), "algorithm") or "").upper()
        if algorithm == "RSA":
            return (number(props.get("rsaBits"), "rsaBits") or 2048) < MIN_RSA_BITS
        if algorithm == "ECDSA":
            return (text(props.get("ecdsaCurve"), "ecdsaCurve") or "P224").upper() not in (
                "P256",
                "P384",
                "P521",
            )
        return algorithm != "ED25519"
    key_algorithm = text(props.get("keyAlgorithm"), "keyAlgorithm")
    return key_algorithm is not None and _weak_algorithm(key_algorithm)


def _weak_key(resource: Resource) -> bool:
    if resource.type == TLS_PRIVATE_KEY or _is_dynamic(resource.type):
        return _declared_key_weak(resource)
    return any(  # a container or service: the certificates it receives
        cert is not None and cert.weak_key
        for u in uploads(resource.props)
        for cert in map(parse_certificate, certificate_blocks(u.content or ""))
    )


def private_key_strong(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    """Declared keys, and the certificates a container or Swarm service receives: uploads, or
    Swarm configs/secrets read from the stack's ServiceConfig/Secret resources (a stack rule
    for that reason)."""
    declared = [r for r in resources if r.type == TLS_PRIVATE_KEY or _is_dynamic(r.type)]
    for resource in [*declared, *task_containers(resources)]:
        try:
            weak = _weak_key(resource)
        except Unreadable as exc:  # one unreadable resource does not hide the others
            subject = f"{kind_of(resource.type)} {resource.name}"
            yield Violation(exc.message(subject, "tls-private-key-strong"), resource.urn)
            continue
        if weak:
            yield Violation(
                f"{label(resource)} must use RSA keys of at least 2048 bits or ECDSA P-256/P-384/"
                f"P-521 (pulumi-tls defaults to P224, which TLS 1.3 cannot use).",
                resource.urn,
            )


def _uses(value: Any, what: str) -> set[str]:
    return {u.lower().replace("_", "").replace("-", "") for u in strings(value, what)}


def certificate_profile(resource: Resource, _config: Mapping[str, Any]) -> Iterator[str]:
    props = resource.props
    uses = _uses(props.get("allowedUses"), "allowedUses")
    is_ca = props.get("isCaCertificate") is True
    if resource.type == TLS_LOCALLY_SIGNED_CERT:
        if is_ca:
            yield f"{label(resource)} must not be a CA certificate (isCaCertificate: false)."
        if not uses & {"serverauth", "clientauth"}:
            yield (
                f"{label(resource)} must list server_auth or client_auth in allowedUses for the "
                f"role it serves."
            )
    elif is_ca and "certsigning" not in uses:
        yield f"{label(resource)} is a CA certificate and must list cert_signing in allowedUses."


def _leaf_validity(resource: Resource) -> tuple[float, bool] | None:
    """A leaf certificate's validity in days and whether it renews early; None: not a leaf.

    A leaf that states no validity counts as unbounded: the limit cannot be confirmed.
    """
    props = resource.props
    try:
        if resource.type == TLS_LOCALLY_SIGNED_CERT:
            hours = number(props.get("validityPeriodHours"), "validityPeriodHours")
            renews = number(props.get("earlyRenewalHours"), "earlyRenewalHours") is not None
            return (math.inf if hours is None else hours / 24), renews
        if _is_dynamic(resource.type) and "usage" in props:  # a dynamic leaf certificate
            days = number(props.get("validityDays"), "validityDays")
            renews = number(props.get("renewBeforeDays"), "renewBeforeDays") is not None
            return (math.inf if days is None else days), renews
    except Unreadable as exc:
        exc.subject, exc.urn = label(resource), resource.urn
        raise
    return None


def _is_dynamic(resource_type: str) -> bool:
    return any(fnmatch.fnmatchcase(resource_type, pattern) for pattern in DYNAMIC)


def validity_bounded(
    resources: Sequence[Resource], config: Mapping[str, Any]
) -> Iterator[Violation]:
    """At most the configured validity, and never above the declared environment's floor."""
    maximum = floor(resources).leaf_validity_maximum(
        number(config.get("maximumLeafValidityDays"), "policy config maximumLeafValidityDays")
    )
    for resource in resources:
        leaf = _leaf_validity(resource)
        if leaf is None:
            continue
        days, renews = leaf
        if days > maximum or not renews:
            yield Violation(
                f"{label(resource)} must be valid for at most {maximum} days in this stack's "
                f"environment and renew early (earlyRenewalHours / renewBeforeDays).",
                resource.urn,
            )


def private_key_unique(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    seen: dict[str, set[str]] = {}
    holders: dict[str, list[Resource]] = {}
    for resource in task_containers(resources):
        with reading(resource):
            received = uploads(resource.props)
        for upload in received:
            for block in private_key_blocks(upload.content or ""):
                seen.setdefault(block, set()).add(upload.basename)
                holders.setdefault(block, []).append(resource)
    for block, names in seen.items():
        if len(names) > 1:
            resource = holders[block][0]
            yield Violation(
                f"{label(resource)} receives one private key under {len(names)} different file "
                f"names; give every certificate (server, each client) its own key.",
                resource.urn,
            )


def server_certificate_profile(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    dials = []
    for client in task_containers(resources):
        with reading(client):
            urls = redis_urls(client.props)
        dials += [(client.urn, (urlsplit(url).hostname or "").lower()) for _, url in urls]
    for server in redis_servers(resources):
        path = server.settings.value("tls-cert-file")
        if not path:
            continue  # redis-tls-configured reports the missing certificate
        content = server.files.read(path)
        certs = [c for c in map(parse_certificate, certificate_blocks(content or "")) if c]
        who = redis_label(server.resource, sentinel=server.sentinel)
        if not certs:
            unreadable = (
                f"{who} must serve a certificate this stack uploads (tls-cert-file), so its "
                f"profile can be verified; it cannot be read."
            )
            service = server.resource.type == SERVICE
            yield Violation(
                in_service_words(unreadable) if service else unreadable, server.resource.urn
            )
            continue
        leaf = certs[0]
        if leaf.is_ca or not leaf.server_auth:
            yield Violation(
                f"{who} must serve a leaf certificate with extended key usage serverAuth and no "
                f"CA flag.",
                server.resource.urn,
            )
        names = aliases(server.resource.props)
        dialled = {host for urn, host in dials if urn != server.resource.urn}
        missing = sorted(h for h in dialled & {n.lower() for n in names}
                         if h not in leaf.dns_names and h not in leaf.ip_addresses)  # fmt: skip
        if missing:
            yield Violation(
                f"{who} must serve a certificate whose subjectAltName covers the host name "
                f"each client dials (the host of its rediss:// URL); {len(missing)} is missing.",
                server.resource.urn,
            )


def ca_key_not_deployed(
    resources: Sequence[Resource], _config: Mapping[str, Any]
) -> Iterator[Violation]:
    ca_keys = set()
    for resource in resources:
        for _, leaf in string_leaves(resource.props):
            for block in certificate_blocks(leaf):
                cert = parse_certificate(block)
                if cert is not None and cert.is_ca:
                    ca_keys.add(cert.public_key)
    for resource in task_containers(resources):
        with reading(resource):
            texts = [u.content or "" for u in uploads(resource.props)]
            texts += [value for _, value in envs(resource.props)]
        for blob in texts:
            if any(private_key_public_bytes(b) in ca_keys for b in private_key_blocks(blob)):
                yield Violation(
                    f"{label(resource)} must not receive a CA's private key; only the CA "
                    f"certificate belongs in a container.",
                    resource.urn,
                )
                break


RULES: Final = (
    StackRule(
        name="tls-private-key-strong",
        description="TLS keys are RSA 2048+ or ECDSA P-256 and up.",
        check=private_key_strong,
        refs=("TLS-07",),
    ),
    ResourceRule(
        name="tls-certificate-profile",
        description="Leaf certificates are not CAs and carry the usage of their role.",
        resource_types=(TLS_LOCALLY_SIGNED_CERT, TLS_SELF_SIGNED_CERT),
        check=certificate_profile,
        refs=("TLS-08",),
    ),
    StackRule(
        name="tls-certificate-validity-bounded",
        description="Leaf certificates are short-lived for the environment and renewed early.",
        check=validity_bounded,
        refs=("TLS-09",),
        config_schema={
            "maximumLeafValidityDays": {
                "type": "integer",
                "minimum": 1,
                "default": 397,
                "description": (
                    "Longest leaf certificate validity, in days; the declared environment's "
                    "own limit (docs/security-catalog.md, TLS-09) holds when it is shorter."
                ),
            }
        },
    ),
    StackRule(
        name="tls-private-key-unique",
        description="Every certificate has its own private key.",
        check=private_key_unique,
        refs=("TLS-08",),
    ),
    StackRule(
        name="tls-server-certificate-profile",
        description=(
            "Redis servers present a serverAuth leaf certificate naming every host clients dial."
        ),
        check=server_certificate_profile,
        refs=("TLS-08",),
    ),
    StackRule(
        name="tls-ca-key-not-deployed",
        description="No container or Swarm service receives a CA's private key.",
        check=ca_key_not_deployed,
        refs=("TLS-10",),
    ),
)
