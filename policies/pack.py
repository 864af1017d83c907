"""Turn the pure rules into `pulumi_policy` policies: the only module that knows the engine.

`__main__.py` serves these as the pack; tests import them without starting a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rules import RULES, Enforcement, Resource, ResourceRule, Rule, StackRule

PACK_NAME: Final = "secure-redis"
PACK_DESCRIPTION: Final = (
    "Rejects insecure pulumi-docker stacks: TLS-only, ACL-locked Redis on internal networks, "
    "hardened containers, no plaintext secrets (docs/security-catalog.md)."
)
_LEVELS: Final = {
    Enforcement.MANDATORY: EnforcementLevel.MANDATORY,
    Enforcement.ADVISORY: EnforcementLevel.ADVISORY,
}


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.config_schema:
        return None
    return PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config_schema.items()})


def _described(rule: Rule) -> dict[str, Any]:
    """The fields every CrossGuard policy takes from its rule, whatever it validates."""
    return {
        "name": rule.name,
        "description": rule.description,
        "enforcement_level": _LEVELS[rule.enforcement],
        "config_schema": _schema(rule),
        "tags": list(rule.refs),
    }


def _resource_policy(rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        # Python CrossGuard has no typed filter: check the type token before reading props.
        if not rule.applies_to(args.resource_type):
            return
        resource = Resource(
            type=args.resource_type,
            name=args.name,
            props=args.props,
            urn=args.urn,
            secret_outputs=frozenset(args.opts.additional_secret_outputs or ()),
        )
        for message in rule.run(resource, _config(args.get_config())):
            report_violation(message, None)

    return ResourceValidationPolicy(validate=validate, **_described(rule))


def _stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            Resource(
                type=r.resource_type,
                name=r.name,
                props=r.props,
                urn=r.urn,
                secret_outputs=frozenset(r.opts.additional_secret_outputs or ()),
                dependencies=tuple(d.urn for d in r.dependencies),
                property_dependencies=tuple(
                    (key, tuple(d.urn for d in value))
                    for key, value in (r.property_dependencies or {}).items()
                ),
            )
            for r in args.resources
        ]
        for violation in rule.run(resources, _config(args.get_config())):
            report_violation(violation.message, violation.urn or None)

    return StackValidationPolicy(validate=validate, **_described(rule))


def _config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return config or {}


def policies() -> list[Policy]:
    return [
        _resource_policy(rule) if isinstance(rule, ResourceRule) else _stack_policy(rule)
        for rule in RULES
    ]
