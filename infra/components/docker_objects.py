"""Pulumi options and labels for the program's named Docker objects.

Program-side only: it types with `pulumi` and `pulumi_docker`, which the operator commands
(`python -m infra.stack_config`, `-m infra.rotation_probe`, `-m infra.firewall`) never need.
The names and label keys themselves are in infra/naming.py, which imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.naming import Role, label_pairs


def named_options(parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options for a Docker object with a fixed name. Docker refuses two objects with one name,
    so a replacement must delete the old object before creating the new one."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, **extra)


def container_labels(
    stack: str, role: Role, extra: Mapping[str, pulumi.Input[str]] | None = None
) -> list[docker.ContainerLabelArgs]:
    pairs: dict[str, pulumi.Input[str]] = {**label_pairs(stack, role), **(extra or {})}
    return [docker.ContainerLabelArgs(label=k, value=pairs[k]) for k in sorted(pairs)]


def network_labels(stack: str, role: Role) -> list[docker.NetworkLabelArgs]:
    pairs = label_pairs(stack, role)
    return [docker.NetworkLabelArgs(label=k, value=v) for k, v in sorted(pairs.items())]


def volume_labels(stack: str, role: Role) -> list[docker.VolumeLabelArgs]:
    pairs = label_pairs(stack, role)
    return [docker.VolumeLabelArgs(label=k, value=v) for k, v in sorted(pairs.items())]


__all__ = ["container_labels", "named_options", "network_labels", "volume_labels"]
