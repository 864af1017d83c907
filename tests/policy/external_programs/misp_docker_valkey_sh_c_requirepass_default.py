"""MISP's cache: Valkey started by `sh -c` with `--requirepass "${REDIS_PASSWORD:-redispassword}"`,
the variable set on the container to the same compose default (13 characters).

The script chooses between two `exec valkey-server` lines with `if ... else ... fi`. The pack
reads it as a shell does, one command per line, and judges both servers: the `then` branch's
(no password: anyone who connects is let in, as the default user) and the `else` branch's (the
13-character password is shorter than the environment's minimum); what both lack (TLS, an ACL,
maxmemory) is said once. Until session 17 it read the words after the first `valkey-server`
(`else exec valkey-server --requirepass ... fi`) as its arguments, took `else` for a config file
it could not read, and failed closed on every setting without naming either problem."""

from __future__ import annotations

from typing import Final

import pulumi_docker as docker

SOURCE: Final = {
    "repository": "MISP/misp-docker",
    "path": "docker-compose.yml",
    "commit": "003fcb9e598443b1ab3fd56d3dc3a1776a696ebb",
    "language": "docker compose",
    "note": "The redis service only (mail, db, misp-core, misp-modules and misp-guard left out). "
    "Its command is a block scalar: sh -c '<script>', where the script runs `exec "
    "valkey-server` when ENABLE_REDIS_EMPTY_PASSWORD is true and otherwise `exec "
    'valkey-server --requirepass "${REDIS_PASSWORD:-redispassword}"` (compose turns $$ '
    "into $, so the shell resolves it). environment ENABLE_REDIS_EMPTY_PASSWORD="
    "${ENABLE_REDIS_EMPTY_PASSWORD:-false} and REDIS_PASSWORD=${REDIS_PASSWORD:-redispassword} "
    "-> the file's defaults (template.env leaves both unset). The health check (sh -c, "
    'valkey-cli -a "${REDIS_PASSWORD:-redispassword}" ping) as CMD-SHELL; cache_data:/data:Z '
    "-> a declared volume (the SELinux label has no pulumi-docker field); compose's project "
    "network (bridge, <project>_default, the service name as alias) declared here (project "
    "'misp-docker'). The script is transcribed as written, the if branch included.",
}
DEPLOYS_REDIS: Final = True
STACK: Final = "dev"
PROJECT: Final = "misp-docker"

_SCRIPT: Final = """
  if [ "${ENABLE_REDIS_EMPTY_PASSWORD:-false}" = "true" ]; then
    exec valkey-server
  else
    exec valkey-server --requirepass "${REDIS_PASSWORD:-redispassword}"
  fi
"""
_HEALTH: Final = (
    '\n  if [ "${ENABLE_REDIS_EMPTY_PASSWORD:-false}" = "true" ]; then\n'
    "    valkey-cli -p ${REDIS_PORT:-6379} ping | grep -q PONG || exit 1\n"
    "  else\n"
    '    valkey-cli -a "${REDIS_PASSWORD:-redispassword}" -p ${REDIS_PORT:-6379} ping'
    " | grep -q PONG || exit 1\n"
    "  fi\n"
)


def program() -> None:
    network = docker.Network("default", name="misp-docker_default")
    volume = docker.Volume("cache_data", name="misp-docker_cache_data")
    docker.Container(
        "redis",
        name="misp-docker-redis-1",
        image="valkey/valkey:7.2",
        restart="always",
        command=["sh", "-c", _SCRIPT],
        envs=["ENABLE_REDIS_EMPTY_PASSWORD=false", "REDIS_PASSWORD=redispassword"],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD-SHELL", "sh -c '" + _HEALTH + "'"],
            interval="2s",
            timeout="1s",
            retries=3,
            start_period="5s",
        ),
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["redis"])
        ],
    )
