"""The pulumi-docker property names the pack reads are pulumi-docker's own.

A rule that reads a misspelt name (`readonly`, `securityOpt`) sees nothing and passes what it
should judge. Every name the rules read while judging the foreign stacks and the transcribed
corpus (recorded as they read it) must be in the schema pulumi-docker's Python SDK is generated
from (the pinned 5.x in requirements.lock), or be one of the few names older schemas had that
the pack reads on purpose, for programs written against them. A name the rules hold nowhere
as a string (they read it because they walk every property, as the plain-secret check does)
comes from the records, not from the pack, and is not judged here.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import pulumi_docker
import pulumi_docker._inputs
import pulumi_docker.outputs
import pytest

from policies.records import Record, parse_records
from policies.rules import RULES, ResourceRule
from policies.rules._model import (
    CONTAINER,
    DOCKER_PROVIDER,
    IMAGE,
    NETWORK,
    PLUGIN,
    REGISTRY_IMAGE,
    REMOTE_IMAGE,
    SERVICE,
    SERVICE_CONFIG,
    SWARM_SECRET,
    TAG,
    VOLUME,
)
from tests.policy import foreign, swarm
from tests.policy.support import to_resources

pytestmark = pytest.mark.policy

RESOURCE_CLASSES: Final = {
    CONTAINER: pulumi_docker.Container, SERVICE: pulumi_docker.Service,
    NETWORK: pulumi_docker.Network, VOLUME: pulumi_docker.Volume,
    REMOTE_IMAGE: pulumi_docker.RemoteImage, IMAGE: pulumi_docker.Image,
    REGISTRY_IMAGE: pulumi_docker.RegistryImage, PLUGIN: pulumi_docker.Plugin,
    SWARM_SECRET: pulumi_docker.Secret, SERVICE_CONFIG: pulumi_docker.ServiceConfig,
    TAG: pulumi_docker.Tag, DOCKER_PROVIDER: pulumi_docker.Provider,
}  # fmt: skip
# Names pulumi-docker 5 dropped, which the pack still reads for programs written against 3
# and 4 (checked in pulumi/pulumi-docker's provider/cmd/pulumi-resource-docker/schema.json at
# tags v3.6.1 and v4.0.0): Container `networks` and `networkAliases`, a Service task spec's
# `networks` (v5 has only `networksAdvanceds`), RemoteImage `latest` (v5: `imageId`).
OLDER_SCHEMAS: Final = frozenset({"networks", "networkAliases", "latest"})
# Objects whose keys are data (log options, driver options, tmpfs mounts, build arguments, a
# task's environment), not property names.
DATA_MAPS: Final = frozenset(
    {"logOpts", "tmpfs", "options", "driverOpts", "args", "buildArgs", "env", "sysctls",
     "storageOpts", "auxAddress", "driverOptions"}
)  # fmt: skip


def _names(classes: Iterator[type]) -> set[str]:
    """The engine's (camelCase) property names, as the SDK's getters declare them."""
    names = set()
    for cls in classes:
        for value in vars(cls).values():
            if isinstance(value, property) and value.fget is not None:
                name = getattr(value.fget, "_pulumi_name", None)
                if name:
                    names.add(name)
    return names


@cache
def resource_names(resource_type: str) -> frozenset[str]:
    """A resource's top-level properties: its inputs (`<Resource>Args`), its outputs, and the
    `id` the engine hands stack policies among a bridged resource's outputs."""
    cls = RESOURCE_CLASSES[resource_type]
    args = getattr(pulumi_docker, f"{cls.__name__}Args")
    return frozenset(_names(iter([cls, args])) | {"id"})


@cache
def names_in_the_pack() -> frozenset[str]:
    """Every string constant in policies/."""
    root = Path(__file__).resolve().parents[2] / "policies"
    return frozenset(
        node.value
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


@cache
def schema_names() -> frozenset[str]:
    modules = (pulumi_docker, pulumi_docker._inputs, pulumi_docker.outputs)
    return frozenset(_names(c for m in modules for _, c in inspect.getmembers(m, inspect.isclass)))


class _Reading(Mapping[str, Any]):
    """A property object that records each name a rule asks it for, with where it sits."""

    def __init__(self, data: Mapping[str, Any], where: tuple[str, ...], read: set[Any]) -> None:
        self._data, self._where, self._read = data, where, read

    def _value(self, key: str) -> Any:
        return _reading(self._data[key], (*self._where, key), self._read)

    def __getitem__(self, key: str) -> Any:
        self._read.add((self._where, key))
        return self._value(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._read.add((self._where, key))
        return self._value(key) if key in self._data else default

    def __contains__(self, key: object) -> bool:
        self._read.add((self._where, key))
        return key in self._data

    def items(self) -> Any:  # every entry at once: the data's names, not the rule's
        return [(k, self._value(k)) for k in self._data]

    def values(self) -> Any:
        return [self._value(k) for k in self._data]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _ReadingList(Sequence[Any]):
    def __init__(self, data: Sequence[Any], where: tuple[str, ...], read: set[Any]) -> None:
        self._data, self._where, self._read = data, where, read

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [_reading(v, self._where, self._read) for v in self._data[index]]
        return _reading(self._data[index], self._where, self._read)

    def __len__(self) -> int:
        return len(self._data)


def _reading(value: Any, where: tuple[str, ...], read: set[Any]) -> Any:
    if isinstance(value, Mapping):
        return _Reading(value, where, read)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return _ReadingList(value, where, read)
    return value


def _stacks() -> Iterator[list[Record]]:
    yield foreign.records()
    yield swarm.records()
    for path in sorted((Path(__file__).parent / "external").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield parse_records(data["records"], source=path.name, stack=data["stack"],
                            project=data["project"])  # fmt: skip


@cache
def names_read() -> frozenset[tuple[str, tuple[str, ...], str]]:
    """(resource type, where, name) for every property name a rule reads on these stacks."""
    found: set[tuple[str, tuple[str, ...], str]] = set()
    for records in _stacks():
        resources, reads = [], []
        for resource in to_resources(records):
            read: set[Any] = set()
            reads.append((resource.type, read))
            resources.append(
                dataclasses.replace(resource, props=_Reading(resource.props, (), read))
            )
        for rule in RULES:
            if isinstance(rule, ResourceRule):
                for resource in resources:
                    rule.run(resource, {})
            else:
                rule.run(resources, {})
        found |= {(t, where, name) for t, read in reads for where, name in read}
    return frozenset(found)


def test_the_recorder_sees_the_rules_read__names_of_every_kind() -> None:
    read = names_read()
    assert {(CONTAINER, (), "readOnly"), (CONTAINER, ("capabilities",), "drops"),
            (SERVICE, ("taskSpec", "containerSpec"), "user"),
            (NETWORK, (), "internal")} <= read  # fmt: skip


def test_every_pulumi_docker_name_the_pack_reads__is_in_pulumi_dockers_schema() -> None:
    wrong = set()
    for resource_type, where, name in names_read():
        if resource_type not in RESOURCE_CLASSES or DATA_MAPS & set(where):
            continue
        if name not in names_in_the_pack():
            continue
        known = resource_names(resource_type) if not where else schema_names()
        if name not in known | OLDER_SCHEMAS:
            wrong.add(f"{resource_type} {'.'.join((*where, name))}")
    assert not wrong, sorted(wrong)


def test_names_from_older_schemas__are_not_in_the_current_one() -> None:
    """If pulumi-docker brings one back, it leaves OLDER_SCHEMAS."""
    assert not OLDER_SCHEMAS & schema_names()
