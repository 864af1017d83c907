"""testinfra hosts and the docker CLI, for what runs inside containers and on this host."""

from __future__ import annotations

import subprocess
from typing import Any

import testinfra


def container_host(name: str) -> Any:
    """`docker://NAME`: commands run with `docker exec`, as the container's own user."""
    return testinfra.get_host(f"docker://{name}")


def stat_dir(host: Any, directory: str) -> dict[str, tuple[int, int, int]]:
    """{name: (mode, uid, gid)} of every entry in `directory` (and "." for itself), in one exec
    instead of one per attribute. Entries are followed through symlinks (`-L`): a material
    volume's names link into its current `..<revision>` directory (infra/components/material.py)."""
    result = host.run("cd %s && stat -L -c '%%n %%a %%u %%g' . *", directory)
    assert result.rc == 0, f"stat in {directory}: {result.stderr}"
    entries = {}
    for line in result.stdout.splitlines():
        name, mode, uid, gid = line.rsplit(" ", 3)
        entries[name] = (int(mode, 8), int(uid), int(gid))
    return entries


def local_host() -> Any:
    return testinfra.get_host("local://")


def docker_cli(*args: str) -> str:
    """The docker CLI, for what the SDK makes awkward (e.g. `docker history`)."""
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


__all__ = ["container_host", "docker_cli", "local_host", "stat_dir"]
