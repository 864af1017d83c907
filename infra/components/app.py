"""The secure_cache client app: backend + frontend networks; HTTP listens on the frontend
network and loopback (HTTP_ALIAS), published on the host's 127.0.0.1 only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.components.app_image import (
    DATA_KEY_ENVS,
    MATERIAL_DIR,
    MAX_VALUE_BYTES,
    VALUE_LIMIT_ENVS,
    AppContainerArgs,
    AppImageContainer,
    identity_envs,
)
from infra.components.hardening import hardened_runtime
from infra.components.material import ClientIdentityFiles, MaterialFile
from infra.naming import APP_HTTP_PORT, Role, object_name
from infra.redis_acl import APP_USER

# Processes and threads of the app's uid: the HTTP service's worker threads and the health
# check's interpreter, with room to spare; far below the thousands a thread bomb starts.
APP_NPROC: Final = 256
# The graceful shutdown (5 s, app/secure_cache/service.py) plus closing its Redis connections.
APP_DESTROY_GRACE_S: Final = 10
HEALTH_PATH: Final = "/healthz"
# Its HTTP_MAX_VALUE_BYTES, which the rotation pass gets too (app_image.VALUE_LIMIT_ENVS).
APP_MAX_VALUE_BYTES: Final = MAX_VALUE_BYTES
APP_MAX_CONNECTIONS: Final = 400
# The app's name on the frontend network alone, where it listens (HTTP_HOST) besides the
# loopback its health check probes (app/secure_cache/listen.py listen_addresses): its
# container name resolves on the backend network too, and with 0.0.0.0 a container on the
# backend network alone reached the API (attack pass of 2026-12-03 on s92). The host's
# published port is forwarded to the frontend address (docker-proxy).
HTTP_ALIAS: Final = "app-http"


@dataclass(frozen=True, kw_only=True)
class AppFiles(ClientIdentityFiles):
    """File contents for the app's material volume; everything but certificates is secret.
    `password` is the newest one (`value`): written after Redis reloaded its ACL with it."""

    data_key: pulumi.Input[str]
    previous_data_keys: pulumi.Input[str]
    """Comma-separated; may be empty (no rotation in progress)."""
    api_token: pulumi.Input[str]
    """Bearer token of the HTTP API (every route but /healthz): the one handed out."""
    previous_api_tokens: pulumi.Input[str] = ""
    """The token still accepted beside it while it rotates; empty otherwise."""
    data_key_generation: pulumi.Input[str] = "0"
    """The stack's dataKeyGeneration (public), which /metrics shows."""


@dataclass(frozen=True, kw_only=True)
class CacheAppArgs(AppContainerArgs):
    frontend_network: str
    key_prefix: str
    host_port: int
    memory_mb: int
    cpus: float
    files: AppFiles


def memory_budgets(memory_mb: int) -> tuple[int, int]:
    """(HTTP_MAX_INFLIGHT_BYTES, CACHE_FALLBACK_MAX_BYTES) for a container of `memory_mb`.

    An eighth of the limit each: with the interpreter (51 MiB RSS with its libraries) and the
    connections' buffers (HTTP_MAX_CONNECTIONS x at most 80 KiB) the process stays below the
    limit whatever the clients do, so the kernel never OOM-kills it.
    """
    eighth = (memory_mb << 20) // 8
    return eighth, eighth


def app_envs(args: CacheAppArgs) -> list[str]:
    """Configuration only: every secret is a `*_FILE` path into the read-only material volume."""
    inflight, fallback = memory_budgets(args.memory_mb)
    container_name = object_name(args.stack, Role.APP)
    return [
        *identity_envs(args, user=APP_USER, identity="app", key_prefix=args.key_prefix),
        *DATA_KEY_ENVS,
        f"CACHE_FALLBACK_MAX_BYTES={fallback}",
        f"HTTP_API_TOKEN_FILE={MATERIAL_DIR}/api.token",
        f"HTTP_API_PREVIOUS_TOKENS_FILE={MATERIAL_DIR}/api.previous-tokens",
        # Loopback names for the host's published port and the health check, and the
        # container's own name for clients on the frontend network.
        f"HTTP_ALLOWED_HOSTS=localhost,127.0.0.1,{container_name}",
        *VALUE_LIMIT_ENVS,
        f"HTTP_MAX_INFLIGHT_BYTES={inflight}",
        f"HTTP_MAX_CONNECTIONS={APP_MAX_CONNECTIONS}",
        # Public: the stack's dataKeyGeneration, which /metrics shows (re-read per scrape).
        f"REDIS_ENCRYPTION_KEY_GENERATION_FILE={MATERIAL_DIR}/data.generation",
        # Its frontend address (and loopback) only: nothing on the backend network reaches it.
        f"HTTP_HOST={HTTP_ALIAS}",
    ]


def app_healthcheck_test() -> list[str]:
    probe = (
        "import urllib.request; "
        f"urllib.request.urlopen('http://127.0.0.1:{APP_HTTP_PORT}{HEALTH_PATH}', timeout=3)"
    )
    return ["CMD", "python3", "-c", probe]


class CacheApp(AppImageContainer):
    def __init__(
        self, name: str, args: CacheAppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "secure-redis:infra:CacheApp", name, args, role=Role.APP, consumer=Role.APP, opts=opts
        )
        files = args.files
        self._declare(
            args,
            files=(
                *files.identity_files("app"),
                MaterialFile("data.key", files.data_key, secret=True),
                MaterialFile("data.previous-keys", files.previous_data_keys, secret=True),
                MaterialFile("api.token", files.api_token, secret=True),
                MaterialFile("api.previous-tokens", files.previous_api_tokens, secret=True),
                MaterialFile("data.generation", files.data_key_generation, secret=False),
            ),
            networks=(args.backend_network, args.frontend_network),
            aliases={args.frontend_network: (HTTP_ALIAS,)},
            envs=app_envs(args),
            # Loopback only: the HTTP endpoint is for this host, not the network.
            ports=[
                docker.ContainerPortArgs(
                    internal=APP_HTTP_PORT, external=args.host_port, ip="127.0.0.1", protocol="tcp"
                )
            ],
            # A replaced app (any app setting changed, an upgrade) is stopped before it is
            # removed: SIGTERM ends it gracefully (app/secure_cache/service.py: the requests it
            # is serving are answered within its 5 s graceful shutdown, then exit 0) instead
            # of a kill cutting them off unanswered. pulumi-docker and the local applier both
            # honour it (infra/applier/engine.py).
            destroy_grace_seconds=APP_DESTROY_GRACE_S,
            **hardened_runtime(
                uid=self.uid,
                memory_mb=args.memory_mb,
                cpus=args.cpus,
                nproc=APP_NPROC,
                healthcheck=app_healthcheck_test(),
            ),
        )


__all__ = [
    "APP_HTTP_PORT",
    "APP_NPROC",
    "HEALTH_PATH",
    "HTTP_ALIAS",
    "MATERIAL_DIR",
    "AppFiles",
    "CacheApp",
    "CacheAppArgs",
    "app_envs",
    "app_healthcheck_test",
    "memory_budgets",
]
