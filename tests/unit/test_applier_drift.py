"""infra/applier/drift.py: a running container compared with its declaration, field by field
(no Docker: `docker inspect` answers written out here as Docker 20.10 gives them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.applier.drift import Drift, container_drift
from infra.applier.translate import translate_container

MIB = 1024 * 1024
SPEC = translate_container(
    "c",
    {
        "name": "s-c",
        "image": "img",
        "memory": 64,
        "memorySwap": 64,
        "cpus": "0.5",
        "restart": "on-failure",
        "maxRetryCount": 5,
        "capabilities": {"drops": ["ALL"]},
        "readOnly": True,
        "securityOpts": ["no-new-privileges:true"],
        "networksAdvanced": [{"name": "s-backend"}],
    },
    root=Path("/"),
)


def inspected(**host: Any) -> dict[str, Any]:
    """What Docker reports for the container created from SPEC, with `host` changed."""
    return {
        "Name": "/s-c",
        "HostConfig": {
            "Memory": 64 * MIB,
            "MemorySwap": 64 * MIB,
            "MemoryReservation": 0,
            "NanoCpus": 500_000_000,
            "CpuShares": 0,
            "CpusetCpus": "",
            "CpuQuota": 0,
            "CpuPeriod": 0,
            "PidsLimit": None,
            "BlkioWeight": 0,
            "Privileged": False,
            "ReadonlyRootfs": True,
            "CapAdd": None,
            "SecurityOpt": ["no-new-privileges:true"],
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
            **host,
        },
        "NetworkSettings": {"Networks": {"s-backend": {}}},
    }


def test_drift__the_container_as_created_has_none() -> None:
    assert not container_drift(SPEC, inspected())


@pytest.mark.parametrize(
    ("host", "drift"),
    [
        # docker update: set back by an update in place
        ({"Memory": 1024 * MIB}, Drift(updatable=("HostConfig.Memory",))),
        ({"RestartPolicy": {"Name": "always"}}, Drift(updatable=("HostConfig.RestartPolicy",))),
        # docker update of what the program leaves unset: the update API reads 0 as "keep"
        ({"CpuShares": 4096}, Drift(replace=("HostConfig.CpuShares",))),
        ({"PidsLimit": 100000}, Drift(replace=("HostConfig.PidsLimit",))),
        ({"NanoCpus": 2_000_000_000}, Drift(replace=("HostConfig.NanoCpus",))),
        # hostconfig.json edited with the engine stopped
        ({"Privileged": True}, Drift(replace=("HostConfig.Privileged",))),
        ({"CapAdd": ["SYS_ADMIN"]}, Drift(replace=("HostConfig.CapAdd",))),
        ({"ReadonlyRootfs": False}, Drift(replace=("HostConfig.ReadonlyRootfs",))),
        ({"SecurityOpt": ["seccomp=unconfined"]}, Drift(replace=("HostConfig.SecurityOpt",))),
    ],
)
def test_drift__names_each_changed_field(host: dict[str, Any], drift: Drift) -> None:
    assert container_drift(SPEC, inspected(**host)) == drift


def test_drift__a_network_joined_by_hand_or_a_rename_needs_a_new_container() -> None:
    joined = inspected()
    joined["NetworkSettings"]["Networks"]["bridge"] = {}
    assert container_drift(SPEC, joined) == Drift(replace=("NetworkSettings.Networks",))
    assert container_drift(SPEC, {**inspected(), "Name": "/other"}) == Drift(replace=("Name",))
