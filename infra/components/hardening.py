"""The runtime hardening every long-running container of a stack gets, in one place.

Redis and the app differ in what they run, mount and expose; they do not differ in how they
are confined (docs/design.md#security-model point 4), so both take these arguments from here.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi_docker as docker

TMP_DIR: Final = "/tmp"  # noqa: S108 - a private tmpfs inside the container, not the host's
TMPFS_OPTIONS: Final = "rw,noexec,nosuid,nodev,size=16m"


def hardened_runtime(
    *, uid: int, memory_mb: int, cpus: float, nproc: int, healthcheck: list[str]
) -> dict[str, Any]:
    """docker.Container keyword arguments: non-root, read-only root with a private tmpfs,
    no capabilities, no privilege escalation, memory (no swap), CPU and process limits, a
    bounded restart policy, a health check the engine waits for, and bounded logs."""
    return {
        "user": f"{uid}:{uid}",
        # CIS Docker 5.29 (v1.6.0 numbering, docs/security-catalog.md). pulumi-docker has no
        # pidsLimit; RLIMIT_NPROC bounds the processes and threads of the uid, and the uid is
        # this container's alone (infra/runtime_ids.py), so the bound is per container. Soft =
        # hard: the process cannot raise it (without CAP_SYS_RESOURCE, not the hard one either).
        "ulimits": [docker.ContainerUlimitArgs(name="nproc", soft=nproc, hard=nproc)],
        "read_only": True,
        "tmpfs": {TMP_DIR: TMPFS_OPTIONS},
        "privileged": False,
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "security_opts": ["no-new-privileges:true"],
        "ipc_mode": "private",
        "memory": memory_mb,
        "memory_swap": memory_mb,
        "cpus": f"{cpus:g}",
        "restart": "on-failure",
        "max_retry_count": 5,
        # The engine runs the first check one interval after start (Docker 20.10 has no
        # start interval), so the interval also bounds how long a deploy waits for "healthy".
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=healthcheck, interval="5s", timeout="5s", retries=5, start_period="10s"
        ),
        "wait": True,
        "wait_timeout": 120,
        "log_driver": "json-file",
        "log_opts": {"max-size": "10m", "max-file": "3"},
    }


__all__ = ["TMPFS_OPTIONS", "TMP_DIR", "hardened_runtime"]
