"""The Redis server: TLS only, ACL-locked, on the internal backend network, no published port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.aof_files import DATA_DIR as AOF_DATA_DIR
from infra.components.docker_objects import container_labels, named_options, volume_labels
from infra.components.hardening import hardened_runtime
from infra.components.material import MaterialFile, MaterialVolume, MaterialVolumeArgs
from infra.components.reload import RedisReload, RedisReloadArgs, ReloadFiles
from infra.images import local_image
from infra.naming import REDIS_ALIAS, Role, object_name
from infra.redis_acl import HEALTHCHECK_USER
from infra.redis_conf import RedisTlsConf, directives, render_redis_conf
from infra.runtime_ids import runtime_id
from infra.settings import REPO_ROOT

# Processes and threads of the Redis uid: the server's own threads (main, three background,
# jemalloc), an AOF rewrite child, and the health check's shell, redis-cli, cat and grep, with
# room to spare; far below what a fork bomb needs.
REDIS_NPROC: Final = 64
MATERIAL_DIR: Final = "/etc/secure-redis"
DATA_DIR: Final = AOF_DATA_DIR  # infra/aof_files.py reads the AOF there
IMAGE_CONTEXT: Final = REPO_ROOT / "infra" / "redis-image"
# Settings whose value is `""` read better in the file than as an empty argv word; and
# rename-command, whose two words Redis would take as one argument on argv (it refused to
# start: tests/integration/test_redis_command_line.py).
_CONF_ONLY: Final = frozenset({"save", "logfile", "rename-command"})


@dataclass(frozen=True)
class RedisFiles:
    """File contents for the material volume. Keys and the password must be secret Outputs."""

    ca_cert: pulumi.Input[str]
    """The trust bundle: every CA whose certificates Redis accepts (two during a rollover)."""
    server_cert: pulumi.Input[str]
    server_key: pulumi.Input[str]
    healthcheck_cert: pulumi.Input[str]
    healthcheck_key: pulumi.Input[str]
    healthcheck_password: pulumi.Input[str]
    """The password valid before and after this `up`'s ACL reload (`stable`): the health
    check reads it from the volume while the reload job has not run yet."""
    acl: pulumi.Input[str]
    """The ACL file with `#sha256` password hashes: readable, but still mode 0400."""


@dataclass(frozen=True)
class RedisServerArgs:
    stack: str
    id_slot: int
    """The stack's runtimeIdSlot (0: its name's slot, infra/runtime_ids.py)."""
    backend_network: str
    port: int
    tls_protocols: tuple[str, ...]
    memory_mb: int
    maxmemory_mb: int
    cpus: float
    files: RedisFiles
    revisions: tuple[pulumi.Input[str], ...]
    reload_files: ReloadFiles
    reload_revisions: tuple[pulumi.Input[str], ...]
    depends_on: tuple[pulumi.Resource, ...] = ()


def redis_conf(args: RedisServerArgs) -> RedisTlsConf:
    return RedisTlsConf(
        tls_port=args.port,
        cert_file=f"{MATERIAL_DIR}/server.crt",
        key_file=f"{MATERIAL_DIR}/server.key",
        ca_cert_file=f"{MATERIAL_DIR}/ca.crt",
        acl_file=f"{MATERIAL_DIR}/users.acl",
        data_dir=DATA_DIR,
        maxmemory_mb=args.maxmemory_mb,
        tls_protocols=args.tls_protocols,
    )


def redis_command(conf: RedisTlsConf) -> list[str]:
    """`redis-server <conf>` plus every judged setting again on argv: the config file is the base,
    argv wins, and policies can read both (docs/design.md#policy-readable-declarations)."""
    argv = ["redis-server", f"{MATERIAL_DIR}/redis.conf"]
    for name, value in directives(conf):
        if name not in _CONF_ONLY:
            argv += [f"--{name}", value.strip('"')]
    return argv


def healthcheck_test(port: int) -> list[str]:
    """PING over TLS as the PING-only user with its own client certificate. The password is
    read from its file into REDISCLI_AUTH at run time, so it is never on any argv."""
    script = (
        f'REDISCLI_AUTH="$(cat {MATERIAL_DIR}/healthcheck.password)" '
        f"redis-cli --tls --cacert {MATERIAL_DIR}/ca.crt "
        f"--cert {MATERIAL_DIR}/healthcheck.crt --key {MATERIAL_DIR}/healthcheck.key "
        f"-h 127.0.0.1 -p {port} --user {HEALTHCHECK_USER} --no-auth-warning ping "
        "| grep -qx PONG"
    )
    return ["CMD-SHELL", script]


class RedisServer(pulumi.ComponentResource):
    """Redis and what keeps it current: its material volume and the reload jobs. The
    container's declaration never mentions the material, so rotating it never replaces (or
    restarts) Redis; the reload jobs make the running server read it."""

    image: docker.Image
    data_volume: docker.Volume
    material: MaterialVolume
    container: docker.Container
    container_name: str
    reload: RedisReload
    uid: int

    def __init__(
        self, name: str, args: RedisServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("secure-redis:infra:RedisServer", name, None, opts)
        stack = args.stack
        conf = redis_conf(args)
        self.uid = runtime_id(stack, Role.REDIS, args.id_slot)
        self.container_name = object_name(stack, Role.REDIS)
        self.image = local_image(
            f"{name}-image",
            stack=stack,
            role=Role.REDIS,
            context=IMAGE_CONTEXT,
            uid=self.uid,
            opts=pulumi.ResourceOptions(parent=self),
        )
        image_id = self.image.repo_digest  # the local image ID: immutable, unlike the tag
        files = args.files
        self.material = MaterialVolume(
            f"{name}-material",
            MaterialVolumeArgs(
                stack=stack,
                consumer=Role.REDIS,
                image=image_id,
                uid=self.uid,
                mount_path=MATERIAL_DIR,
                files=(
                    MaterialFile("redis.conf", render_redis_conf(conf), secret=False),
                    MaterialFile("users.acl", files.acl, secret=False, mode="0400"),
                    MaterialFile("ca.crt", files.ca_cert, secret=False),
                    MaterialFile("server.crt", files.server_cert, secret=False),
                    MaterialFile("server.key", files.server_key, secret=True),
                    MaterialFile("healthcheck.crt", files.healthcheck_cert, secret=False),
                    MaterialFile("healthcheck.key", files.healthcheck_key, secret=True),
                    MaterialFile("healthcheck.password", files.healthcheck_password, secret=True),
                ),
                revisions=args.revisions,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        data_volume_name = object_name(stack, "redis-data")
        self.data_volume = docker.Volume(
            f"{name}-data",
            name=data_volume_name,
            driver="local",
            labels=volume_labels(stack, Role.DATA),
            opts=named_options(self),
        )
        self.container = docker.Container(
            f"{name}-container",
            name=self.container_name,
            image=image_id,
            command=redis_command(conf),
            mounts=[
                docker.ContainerMountArgs(
                    type="volume",
                    source=self.material.volume_name,
                    target=MATERIAL_DIR,
                    read_only=True,
                ),
                docker.ContainerMountArgs(
                    type="volume", source=data_volume_name, target=DATA_DIR, read_only=False
                ),
            ],
            # Only the internal backend network, under the alias clients dial (it is in the
            # server certificate). No `ports`: nothing on the host can reach Redis.
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=args.backend_network, aliases=[REDIS_ALIAS]
                )
            ],
            **hardened_runtime(
                uid=self.uid,
                memory_mb=args.memory_mb,
                cpus=args.cpus,
                nproc=REDIS_NPROC,
                healthcheck=healthcheck_test(args.port),
            ),
            # Time for the AOF to be flushed on `docker stop`.
            stop_timeout=30,
            labels=container_labels(stack, Role.REDIS),
            opts=named_options(
                self, depends_on=[self.material, self.data_volume, *args.depends_on]
            ),
        )
        self.reload = RedisReload(
            f"{name}-reload",
            RedisReloadArgs(
                stack=stack,
                image=image_id,
                uid=self.uid,
                nproc=REDIS_NPROC,
                material_dir=MATERIAL_DIR,
                host=REDIS_ALIAS,
                port=args.port,
                backend_network=args.backend_network,
                tls_files=(conf.cert_file, conf.key_file, conf.ca_cert_file),
                files=args.reload_files,
                revisions=args.reload_revisions,
                tls_content=(files.server_cert, files.ca_cert),
                acl_content=files.acl,
                # After the volume is rewritten, against a running server.
                depends_on=(self.material, self.container),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {"container_name": self.container.name, "image_name": self.image.image_name}
        )


__all__ = [
    "DATA_DIR",
    "MATERIAL_DIR",
    "REDIS_NPROC",
    "RedisFiles",
    "RedisServer",
    "RedisServerArgs",
    "healthcheck_test",
    "redis_command",
    "redis_conf",
]
