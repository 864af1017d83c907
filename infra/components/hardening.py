"""The runtime hardening every container of a stack gets, in one place.

Redis, the app, the exporter and the one-shot jobs (the reload jobs, the data-key rotation
pass) differ in what they run, mount and expose; they do not differ in how they are confined
(docs/design.md#security-model point 4), so all take these arguments from here: long-running
ones `hardened_runtime`, one-shot ones `hardened_job`.
"""

from __future__ import annotations

from typing import Any, Final

import pulumi_docker as docker

TMP_DIR: Final = "/tmp"  # noqa: S108 - a private tmpfs inside the container, not the host's
TMPFS_OPTIONS: Final = "rw,noexec,nosuid,nodev,size=16m"


def _confined(*, uid: int, memory_mb: int, cpus: float, nproc: int) -> dict[str, Any]:
    """docker.Container keyword arguments every container of a stack gets, long-running or
    one-shot: non-root, read-only root, no capabilities, no privilege escalation, its own IPC
    namespace, memory (no swap), CPU and process limits."""
    return {
        "user": f"{uid}:{uid}",
        # CIS Docker 5.29 (v1.6.0 numbering, docs/security-catalog.md). pulumi-docker has no
        # pidsLimit; RLIMIT_NPROC bounds the processes and threads of the uid, and the uid is
        # this container's alone (infra/runtime_ids.py), so the bound is per container. Soft =
        # hard: the process cannot raise it (without CAP_SYS_RESOURCE, not the hard one either).
        "ulimits": [docker.ContainerUlimitArgs(name="nproc", soft=nproc, hard=nproc)],
        "read_only": True,
        "privileged": False,
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "security_opts": ["no-new-privileges:true"],
        "ipc_mode": "private",
        "memory": memory_mb,
        "memory_swap": memory_mb,
        "cpus": f"{cpus:g}",
    }


def hardened_job(
    *, uid: int, memory_mb: int, cpus: float, nproc: int, healthcheck: list[str]
) -> dict[str, Any]:
    """`_confined`, for a container that runs once to completion (the reload jobs, the data-key
    rotation pass): never restarted by Docker, not required to be running, a health check
    for as long as it runs, and small bounded logs."""
    return {
        **_confined(uid=uid, memory_mb=memory_mb, cpus=cpus, nproc=nproc),
        "must_run": False,
        "restart": "no",
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=healthcheck, interval="5s", timeout="3s", retries=3
        ),
        "log_driver": "json-file",
        "log_opts": {"max-size": "1m", "max-file": "1"},
    }


def hardened_runtime(
    *, uid: int, memory_mb: int, cpus: float, nproc: int, healthcheck: list[str]
) -> dict[str, Any]:
    """`_confined`, for a long-running container: a private tmpfs, a bounded restart policy,
    a health check the engine waits for, and bounded logs."""
    return {
        **_confined(uid=uid, memory_mb=memory_mb, cpus=cpus, nproc=nproc),
        "tmpfs": {TMP_DIR: TMPFS_OPTIONS},
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


__all__ = ["TMPFS_OPTIONS", "TMP_DIR", "hardened_job", "hardened_runtime"]
