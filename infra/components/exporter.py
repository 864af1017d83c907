"""The Redis metrics exporter: Redis's own security signals for Prometheus.

`python -m secure_cache.redis_exporter serve` (app/secure_cache/redis_exporter.py) from the
app's image, built a second time with the exporter's own uid (infra/runtime_ids.py: one uid per
container, so its `nproc` budget and its files are its own). It reads INFO and ACL LOG as the
`exporter` ACL user (infra/redis_acl.py: those two and nothing else, no key, no channel) with
its own client certificate and password from its own material volume; it never gets a data
key or the API token. Rotation reaches it like the app: the volume is rewritten in place after
Redis reloaded (infra/components/material.py), and the exporter reads the password file and the
certificate files again for each new connection, so it is never replaced for new material.

Networks: the backend (to reach Redis) and the frontend, where a Prometheus next to the stack
scrapes `secure-redis-S-redis-exporter:9121` (monitoring/prometheus.yml). No host port is
published: what it serves (memory, client and error counts) is for the monitoring, not for the
host's users. /metrics listens on the frontend address only, so a container on the backend
network alone (Redis, a reload job, the rotation pass) cannot reach it, nor take its connection
slots from Prometheus (which it did while it listened on 0.0.0.0: attack pass of 2026-11-30):
the container's name resolves to both of its addresses, so it gets a second name,
METRICS_ALIAS, on the frontend network only, and listens where that name resolves (once, at
start). Its health check asks there too.

Expiry of the certificates no running process reports (WATCHED_CERTIFICATES). Every
certificate the stack issues needs an expiry metric a Prometheus scrapes. The app reports the
CA bundle, the server certificate as served and its own; the exporter its own. The Redis
health check's certificate sits in Redis's volume beside the server's private key, the reload
jobs' beside the reload identity's key (as sensitive as the server's: docs/day2.md) in a
volume no running container mounts, and the rotation pass's beside the data keys in the
volume of a container declared stopped. Exporting from there would mean a long-running
reader of those volumes, i.e. access to those keys. So the exporter's own volume gets a copy
of each of those three *public certificates* (mode 0444, never a key): the same Output the
identity's own volume is written from, written by the same `up` after Redis reloaded (like
every consumer's, `material_after`), and re-read at each scrape. A certificate renewed for
one identity changes the exporter's material revision too, so its initialiser runs again.
tests/unit/test_infra_exporter_watch.py pins each copy to the identity's delivered file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from infra.components.app_image import (
    MATERIAL_DIR,
    AppContainerArgs,
    AppImageContainer,
    identity_envs,
)
from infra.components.hardening import hardened_runtime
from infra.components.material import ClientIdentityFiles, MaterialFile
from infra.naming import EXPORTER_CONTAINER, Role
from infra.redis_acl import EXPORTER_USER

EXPORTER_NAME: Final = EXPORTER_CONTAINER
EXPORTER_PORT: Final = 9121
EXPORTER_MODULE: Final = "secure_cache.redis_exporter"
# The HTTP server's request threads (at most 8 from the network at once, each cut after 10 s:
# app/secure_cache/metrics_server.py) and the health check's interpreter, with room to spare.
EXPORTER_NPROC: Final = 64
# About 30 MiB RSS (CPython, redis-py, prometheus_client); room for a scrape's replies.
EXPORTER_MEMORY_MB: Final = 96
EXPORTER_CPUS: Final = 0.25
# Its name on the frontend network only (see the module docstring).
METRICS_ALIAS: Final = "redis-exporter-metrics"


# Identity -> the exporter's variable naming its copy (the exporter reads the same names:
# app/secure_cache/redis_exporter.py WATCHED_CERTIFICATES; a unit test pins the two).
WATCHED_CERTIFICATES: Final = {
    "healthcheck": "HEALTHCHECK_CERT_FILE",
    "reload": "RELOAD_CERT_FILE",
    "rotation": "ROTATION_CERT_FILE",
}


# A password rotation left half done (old and new accepted) is a state of the deployment that
# the exporter's grant cannot read from Redis (no ACL LIST): written beside its material, after
# Redis reloaded its users, so a 0 there means Redis already refuses the old passwords. Named
# without "password": the policy pack treats a file named like one as a secret (0400 only;
# policies/rules/_secrets.py), and this one is a public count, part of the material revision.
ROTATING_USERS_FILE: Final = "acl-users.rotating"
ROTATING_USERS_ENV: Final = "ROTATING_ACL_USERS_FILE"


@dataclass(frozen=True, kw_only=True)
class ExporterFiles(ClientIdentityFiles):
    """Its identity, and the public certificates it watches for expiry (see the module
    docstring): identity -> certificate PEM, for each of WATCHED_CERTIFICATES. `password`
    is the newest one (`value`): written after Redis reloaded its ACL with it."""

    watched_certs: dict[str, pulumi.Input[str]]
    passwords_rotating: pulumi.Input[str]
    """How many ACL users' passwords are in their ROTATE phase (a count, not a secret)."""

    def watched_files(self) -> tuple[MaterialFile, ...]:
        """`<identity>.crt` for each watched identity (public, mode 0444, no key), and the
        count of passwords rotating."""
        return (
            *(
                MaterialFile(f"{identity}.crt", self.watched_certs[identity], secret=False)
                for identity in WATCHED_CERTIFICATES
            ),
            MaterialFile(ROTATING_USERS_FILE, self.passwords_rotating, secret=False),
        )


@dataclass(frozen=True, kw_only=True)
class RedisExporterArgs(AppContainerArgs):
    frontend_network: str
    files: ExporterFiles


def exporter_envs(args: RedisExporterArgs) -> list[str]:
    """Configuration only: the password is a `*_FILE` path into the read-only volume."""
    return [
        *identity_envs(args, user=EXPORTER_USER, identity="exporter"),
        # Its frontend address only: Prometheus reaches it over the frontend network.
        f"METRICS_HOST={METRICS_ALIAS}",
        f"METRICS_PORT={EXPORTER_PORT}",
        *(f"{var}={MATERIAL_DIR}/{identity}.crt" for identity, var in WATCHED_CERTIFICATES.items()),
        f"{ROTATING_USERS_ENV}={MATERIAL_DIR}/{ROTATING_USERS_FILE}",
    ]


def exporter_healthcheck_test() -> list[str]:
    # Its own module, standard library only: the check runs every 5 s on EXPORTER_CPUS, and
    # through EXPORTER_MODULE it loaded redis, cryptography and prometheus_client first
    # (app/secure_cache/exporter_health.py says what that cost).
    return ["CMD", "python3", "-m", "secure_cache.exporter_health"]


class RedisExporter(AppImageContainer):
    def __init__(
        self, name: str, args: RedisExporterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "secure-redis:infra:RedisExporter",
            name,
            args,
            role=Role.EXPORTER,
            consumer=EXPORTER_NAME,
            opts=opts,
        )
        self._declare(
            args,
            files=(*args.files.identity_files("exporter"), *args.files.watched_files()),
            networks=(args.backend_network, args.frontend_network),
            aliases={args.frontend_network: (METRICS_ALIAS,)},
            entrypoints=["python3", "-m", EXPORTER_MODULE],
            command=["serve"],
            envs=exporter_envs(args),
            **hardened_runtime(
                uid=self.uid,
                memory_mb=EXPORTER_MEMORY_MB,
                cpus=EXPORTER_CPUS,
                nproc=EXPORTER_NPROC,
                healthcheck=exporter_healthcheck_test(),
            ),
        )


__all__ = [
    "EXPORTER_NAME",
    "EXPORTER_PORT",
    "METRICS_ALIAS",
    "ROTATING_USERS_ENV",
    "ROTATING_USERS_FILE",
    "WATCHED_CERTIFICATES",
    "ExporterFiles",
    "RedisExporter",
    "RedisExporterArgs",
    "exporter_envs",
    "exporter_healthcheck_test",
]
