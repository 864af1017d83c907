"""Every rule of the pack, grouped by area; one implementation for pack, checker and tests."""

from __future__ import annotations

from typing import Final

from policies.rules import (
    clients,
    container,
    coverage,
    image,
    network,
    redis,
    secret,
    service,
    stack,
    tls,
)
from policies.rules._model import (
    Enforcement,
    Resource,
    ResourceRule,
    Rule,
    StackRule,
    Violation,
)

RULES: Final[tuple[Rule, ...]] = (
    *network.RULES,
    *container.RULES,
    *redis.RULES,
    *clients.RULES,
    *tls.RULES,
    *secret.RULES,
    *image.RULES,
    *stack.RULES,
    *service.RULES,
    *coverage.RULES,
)


def _unique(rules: tuple[Rule, ...]) -> None:
    names = [r.name for r in rules]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"policy names must be unique; duplicated: {sorted(duplicates)}")


_unique(RULES)

BY_NAME: Final = {rule.name: rule for rule in RULES}

__all__ = [
    "BY_NAME",
    "RULES",
    "Enforcement",
    "Resource",
    "ResourceRule",
    "Rule",
    "StackRule",
    "Violation",
]
