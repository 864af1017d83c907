"""TLS material: the stack's own CA, the Redis server certificate and a client certificate per
identity (app, health check, reload job, metrics exporter, data-key rotation pass)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.providers.certificates import CertificateAuthority, LeafCertificate
from infra.redis_acl import APP_USER, EXPORTER_USER, HEALTHCHECK_USER, RELOAD_USER, ROTATION_USER


@dataclass(frozen=True)
class TlsMaterialArgs:
    stack: str
    key_algorithm: str
    ca_validity_days: int
    cert_validity_days: int
    renew_before_days: int
    redis_dns_names: tuple[str, ...]
    """Every name a client dials: the backend alias, the container name, localhost."""
    redis_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    renewal_generation: int = 0
    """Raising it renews every leaf certificate now (forced renewal)."""
    ca_rollover_generation: int = 0
    """Raising it rolls the CA over (three ups: introduce, promote, retire)."""


class TlsMaterial(pulumi.ComponentResource):
    """One CA per stack (dev never trusts prod); leaves renew before they expire. Consumers
    trust `ca.trustBundlePem` (two CAs during a rollover), never `ca.certPem` alone."""

    ca: CertificateAuthority
    redis_server: LeafCertificate
    app_client: LeafCertificate
    healthcheck_client: LeafCertificate
    reload_client: LeafCertificate
    exporter_client: LeafCertificate
    rotation_client: LeafCertificate

    def __init__(
        self, name: str, args: TlsMaterialArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:TlsMaterial", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The CA renews when its remaining life drops below one leaf lifetime, so a leaf issued
        # just before never outlives it (pki caps a leaf at its CA's notAfter).
        self.ca = CertificateAuthority(
            f"{name}-ca",
            common_name=f"secure-redis {args.stack} CA",
            key_algorithm=args.key_algorithm,
            validity_days=args.ca_validity_days,
            renew_before_days=args.cert_validity_days,
            rollover_generation=args.ca_rollover_generation,
            opts=child,
        )

        def leaf(
            suffix: str,
            common_name: str,
            usage: str,
            keep_previous_while: pulumi.Input[str] | None = None,
            **sans: tuple[str, ...],
        ) -> LeafCertificate:
            return LeafCertificate(
                f"{name}-{suffix}",
                ca=self.ca,
                common_name=common_name,
                usage=usage,
                key_algorithm=args.key_algorithm,
                validity_days=args.cert_validity_days,
                renew_before_days=args.renew_before_days,
                renewal_generation=args.renewal_generation,
                keep_previous_while=keep_previous_while,
                opts=child,
                **sans,
            )

        self.redis_server = leaf(
            "redis-server",
            "redis",
            "server",
            dns_names=args.redis_dns_names,
            ip_addresses=args.redis_ip_addresses,
        )
        self.app_client = leaf("app-client", APP_USER, "client")
        self.healthcheck_client = leaf("healthcheck-client", HEALTHCHECK_USER, "client")
        # The reload job keeps the certificate a CA promote replaced while the old CA is still
        # trusted: its second try when Redis never loaded the introduce's bundle
        # (infra/components/reload.py).
        self.reload_client = leaf(
            "reload-client", RELOAD_USER, "client", keep_previous_while=self.ca.trustBundlePem
        )
        self.exporter_client = leaf("exporter-client", EXPORTER_USER, "client")
        self.rotation_client = leaf("rotation-client", ROTATION_USER, "client")
        self.register_outputs(
            {
                "ca_cert_pem": self.ca.certPem,
                "ca_not_after": self.ca.notAfter,
                "redis_server_not_after": self.redis_server.notAfter,
            }
        )


__all__ = ["TlsMaterial", "TlsMaterialArgs"]
