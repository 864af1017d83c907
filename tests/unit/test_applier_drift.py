"""infra/applier/drift.py: a running container compared with its declaration, field by field
(no Docker: `docker inspect` answers written out here as Docker 20.10 gives them)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from infra.applier.drift import Drift, container_drift, material_drift
from infra.applier.engine import LocalApplier
from infra.applier.plan import Plan, Step
from infra.applier.state import ResourceState, StackState
from infra.applier.translate import Upload, translate_container

MIB = 1024 * 1024
PROPS: dict[str, Any] = {
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
}
SPEC = translate_container("c", PROPS, root=Path("/"))


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


# SPEC's declaration as the last up applied it, before `memory` was raised in the stack
# file: the running container still has the old limits, which is no change by hand.
APPLIED = {
    **PROPS,
    "memory": 48,
    "memorySwap": 48,
    "uploads": [{"file": "/run/stage/a", "content": "x"}],
}


def test_drift__a_setting_changed_in_the_stack_file_is_no_drift() -> None:
    # Found on s45 (2026-12-03): `stack_config set appMemoryMb 300`, then `up` said
    # "changed on the engine since the last up: HostConfig.Memory, HostConfig.MemorySwap",
    # as if someone had run `docker update`: what runs was compared with the new declaration.
    running = inspected(Memory=48 * MIB, MemorySwap=48 * MIB)
    assert container_drift(SPEC, running, applied=APPLIED) == Drift()


def test_drift__a_change_by_hand_is_named_beside_a_changed_setting() -> None:
    by_hand = inspected(Memory=1024 * MIB, MemorySwap=48 * MIB, PidsLimit=100000)
    assert container_drift(SPEC, by_hand, applied=APPLIED) == Drift(
        updatable=("HostConfig.Memory",), replace=("HostConfig.PidsLimit",)
    )


def test_drift__a_recorded_declaration_that_does_not_translate_compares_with_the_new_one() -> None:
    running = inspected(Memory=48 * MIB, MemorySwap=48 * MIB)
    assert container_drift(SPEC, running, applied={"memory": "lots"}) == Drift(
        updatable=("HostConfig.Memory", "HostConfig.MemorySwap")
    )


def test_up__a_setting_raised_since_the_last_up_is_not_named_as_changed_on_the_engine() -> None:
    # What `up` and `plan` print: the engine's `drifted` hands the recorded inputs over.
    step = Step("urn:c", SPEC, type="docker:index/container:Container")
    plan = Plan("s", (step,), ())
    state = StackState("s", {"urn:c": ResourceState(step.type, "s-c", "cid", APPLIED, {})})
    running = inspected(Memory=48 * MIB, MemorySwap=48 * MIB)
    api = SimpleNamespace(inspect_container=lambda _id: running)
    applier = LocalApplier(cast(Any, SimpleNamespace(api=api)), say=lambda _m: None)
    assert applier.drifted(plan, state, frozenset()) == {}


KEY = Upload("/run/stage/server.key", b"KEY\n", 0o400, 999, 999)


def volume_archive(root_mode: int) -> bytes:
    """Docker's archive of a material volume mounted at /mat as the initialiser
    (infra/components/material.py) leaves it, its own directory with `root_mode`."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add(name: str, kind: bytes, mode: int, link: str = "", data: bytes = b"") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            info.uid = info.gid = 999
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("mat", tarfile.DIRTYPE, root_mode)
        add("mat/..rev1", tarfile.DIRTYPE, 0o700)
        add("mat/..rev1/server.key", tarfile.REGTYPE, 0o400, data=b"KEY\n")
        add("mat/..data", tarfile.SYMTYPE, 0o777, link="..rev1")
        add("mat/server.key", tarfile.SYMTYPE, 0o777, link="..data/server.key")
    return out.getvalue()


def test_material_drift__the_volume_as_written_has_none() -> None:
    assert material_drift([KEY], "rev1", volume_archive(0o700)) == ()


def test_material_drift__the_volumes_own_directory_opened_is_named() -> None:
    """`chmod 0755` on the volume's own directory (attack pass of 2026-12-03) lets any uid
    list the names; the initialiser sets it back to 0700, so up must see it."""
    assert material_drift([KEY], "rev1", volume_archive(0o755)) == (
        "material volume directory (mode)",
    )
