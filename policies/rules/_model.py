"""The shapes every rule shares: a resource as policies see it, a rule, a violation.

Nothing here imports `pulumi_policy`: rules are pure functions over plain mappings, so the
policy pack, the offline checker and plain pytest all run the same code.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# Type tokens and URNs are defined once, for infra and policies alike; rule modules import
# them from here with the rest of the rules' vocabulary.
from infra.pulumi_names import (
    CONTAINER,
    DOCKER_PROVIDER,
    DYNAMIC,
    IMAGE,
    LOCAL_COMMAND,
    NETWORK,
    PLUGIN,
    RANDOM_PASSWORD,
    REGISTRY_IMAGE,
    REMOTE_COMMAND,
    REMOTE_IMAGE,
    SERVICE,
    SERVICE_CONFIG,
    STACK_REFERENCE,
    SWARM_SECRET,
    TAG,
    TLS_LOCALLY_SIGNED_CERT,
    TLS_PRIVATE_KEY,
    TLS_SELF_SIGNED_CERT,
    VOLUME,
    urn_parts,
)


class Enforcement(enum.Enum):
    """How a violation is reported: it blocks the deployment, or it is a warning.

    An enum, not a string, so a misspelt level is a type error and an AttributeError at
    import, never a rule that silently becomes mandatory.
    """

    MANDATORY = "mandatory"
    ADVISORY = "advisory"


MANDATORY: Final = Enforcement.MANDATORY
ADVISORY: Final = Enforcement.ADVISORY


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it: engine (camelCase) property names, secrets unwrapped."""

    type: str
    name: str
    """The logical (URN) name."""
    props: Mapping[str, Any]
    urn: str = ""
    secret_outputs: frozenset[str] = frozenset()
    """The resource's `additionalSecretOutputs` option: properties kept encrypted in state."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (stack policies only)."""
    property_dependencies: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(property, URNs whose outputs flowed into it), when the engine says (stack policies)."""
    undecided_networks: tuple[tuple[str, str], ...] = ()
    """(network entry, why the pack cannot tell which of the stack's networks it is), set by
    policies/rules/_service_shape.py when an entry may be a network's ID and may not."""

    @property
    def stack(self) -> str:
        """The stack name from `urn:pulumi:<stack>::<project>::...`, or "" when unknown."""
        return urn_parts(self.urn)[0]


_KINDS: Final = ((bool, "true or false"), (str, "a string"), (int, "a number"),
                 (float, "a number"), (Mapping, "an object"), (Sequence, "a list"))  # fmt: skip


def kind_of_value(value: object) -> str:
    """How a message names what was given: "a string", "an object", ..."""
    return next((name for kind, name in _KINDS if isinstance(value, kind)), "another kind of value")


class Unreadable(ValueError):
    """A property the pack cannot read (wrong type): a violation of the rule that needed it."""

    def __init__(self, what: str, expected: str, got: str = "") -> None:
        super().__init__(f"{what} must be {expected}")
        self.what = what
        self.expected = expected
        self.got = got
        """What was given instead ("a string"), when the reader knows; "" otherwise."""
        self.subject = ""
        """The resource it was read from, when the reader's caller knows it."""
        self.urn = ""

    def message(self, subject: str, rule: str) -> str:
        return unreadable_message(f"{self.subject or subject}: {self.problem}", f"so {rule} cannot")

    @property
    def problem(self) -> str:
        """What is wrong, where and what it should be: "command must be a list, not a
        string"."""
        given = f", not {self.got}" if self.got and self.got != self.expected else ""
        return f"{self.what} must be {self.expected}{given}"


def unreadable_message(problem: str, who: str) -> str:
    """The one shape of every "cannot read it" violation, which policies.check groups by
    problem (UNREADABLE below): the rules that need the property each fail closed."""
    return f"{problem}; the pack cannot read it, {who} confirm it is safe. Fix the property's type."


UNREADABLE: Final = re.compile(
    r"(?P<problem>.+); the pack cannot read it, so (?P<rule>[\w-]+) cannot confirm it is "
    r"safe\. Fix the property's type\."
)
"""A message of unreadable_message for one rule: `problem` starts with the resource's label."""


def kind_of(resource_type: str) -> str:
    """ "docker:index/container:Container" -> "Container"."""
    return resource_type.rsplit(":", 1)[-1] or resource_type


@dataclass(frozen=True)
class Violation:
    """A stack-rule finding: the message and the URN of the resource it is about."""

    message: str
    urn: str = ""
    unreadable: Unreadable | None = None
    """A property the check could not read on this resource: StackRule.run words the
    message with the rule's name (the check does not know it), then reads on."""


JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
ConfigSchema = Mapping[str, Mapping[str, JsonValue]]
"""JSON-schema `properties` of a rule's configuration; each entry carries a safe `default`."""
Config = Mapping[str, JsonValue]
"""A rule's configuration: schema defaults overridden by the stack's policy config."""
ResourceCheck = Callable[[Resource, Config], Iterator[str]]
StackCheck = Callable[[Sequence[Resource], Config], Iterator[Violation]]


def _with_defaults(schema: ConfigSchema, config: Config) -> dict[str, JsonValue]:
    merged = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    merged.update({key: value for key, value in config.items() if key in schema})
    return merged


def _check_enforcement(name: str, enforcement: object) -> None:
    # mypy catches a string here; this catches callers mypy does not see.
    if not isinstance(enforcement, Enforcement):
        raise TypeError(f"rule {name}: enforcement must be an Enforcement, got {enforcement!r}")


@dataclass(frozen=True, kw_only=True)
class ResourceRule:
    """A rule judged on one resource at a time (a `ResourceValidationPolicy`)."""

    name: str
    description: str
    resource_types: tuple[str, ...]
    """Exact type tokens, or fnmatch patterns such as "pulumi-python:dynamic*"."""
    check: ResourceCheck
    refs: tuple[str, ...]
    """Ids and standards (docs/security-catalog.md), e.g. ("RUNTIME-08", "cis-docker-5.13")."""
    enforcement: Enforcement = Enforcement.MANDATORY
    config_schema: ConfigSchema = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_enforcement(self.name, self.enforcement)

    def applies_to(self, resource_type: str) -> bool:
        return any(fnmatch.fnmatchcase(resource_type, t) for t in self.resource_types)

    def run(self, resource: Resource, config: Config | None = None) -> list[str]:
        if not self.applies_to(resource.type):
            return []
        try:
            return list(self.check(resource, _with_defaults(self.config_schema, config or {})))
        except Unreadable as exc:
            return [exc.message(f"{kind_of(resource.type)} {resource.name}", self.name)]


@dataclass(frozen=True, kw_only=True)
class StackRule:
    """A rule about relationships between resources (a `StackValidationPolicy`)."""

    name: str
    description: str
    check: StackCheck
    refs: tuple[str, ...]
    enforcement: Enforcement = Enforcement.MANDATORY
    config_schema: ConfigSchema = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_enforcement(self.name, self.enforcement)

    def run(self, resources: Sequence[Resource], config: Config | None = None) -> list[Violation]:
        found: list[Violation] = []
        said_before: set[tuple[str, str]] = set()
        try:
            for violation in self.check(
                resources, _with_defaults(self.config_schema, config or {})
            ):
                unreadable = violation.unreadable
                said = (
                    violation
                    if unreadable is None
                    else Violation(unreadable.message("a resource", self.name), violation.urn)
                )
                # Once: a container's script may start two servers that share a finding
                # (policies/rules/_redisconf.py, `redis_servers`).
                if (said.message, said.urn) not in said_before:
                    said_before.add((said.message, said.urn))
                    found.append(said)
        except Unreadable as exc:
            found.append(Violation(exc.message("a resource of this stack", self.name), exc.urn))
        return found


Rule = ResourceRule | StackRule


__all__ = [
    "ADVISORY",
    "CONTAINER",
    "DOCKER_PROVIDER",
    "DYNAMIC",
    "IMAGE",
    "LOCAL_COMMAND",
    "MANDATORY",
    "NETWORK",
    "PLUGIN",
    "RANDOM_PASSWORD",
    "REGISTRY_IMAGE",
    "REMOTE_COMMAND",
    "REMOTE_IMAGE",
    "SERVICE",
    "SERVICE_CONFIG",
    "STACK_REFERENCE",
    "SWARM_SECRET",
    "TAG",
    "TLS_LOCALLY_SIGNED_CERT",
    "TLS_PRIVATE_KEY",
    "TLS_SELF_SIGNED_CERT",
    "UNREADABLE",
    "VOLUME",
    "Config",
    "ConfigSchema",
    "Enforcement",
    "JsonValue",
    "Resource",
    "ResourceCheck",
    "ResourceRule",
    "Rule",
    "StackCheck",
    "StackRule",
    "Unreadable",
    "Violation",
    "kind_of",
    "kind_of_value",
    "unreadable_message",
    "urn_parts",
]
