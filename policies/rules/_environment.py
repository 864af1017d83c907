"""The environment a stack declares, and the floor of strictness that follows from it.

Strictness follows what the stack itself says it is (an `ENVIRONMENT=production` on its
containers, the stack config's `secure-redis:environment`), never its name and never a path
built from a URN. Where the declarations disagree or say nothing, the strictest applies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from infra.profiles import LEAF_VALIDITY_LIMIT, PASSWORD_FLOOR, REQUIRED_TLS_MIN, Environment
from policies.rules._model import CONTAINER, Resource, Unreadable
from policies.rules._props import envs


@dataclass(frozen=True)
class Floor:
    """The least an environment accepts; policy config can only tighten it."""

    tls_minimum: str
    password_length: int
    leaf_validity_days: int

    # Where a rule's configured limit meets this floor: the stricter of the two holds, so a
    # config (policies/config/*.json, --policy-pack-config) tightens and never loosens.
    def password_minimum(self, configured: float | None) -> int:
        """The shortest password accepted: the configured length, never below the floor."""
        return max(math.ceil(configured or 0), self.password_length)

    def leaf_validity_maximum(self, configured: float | None) -> int:
        """The longest leaf validity accepted (days): the configured one, never above the floor."""
        if configured is None:
            return self.leaf_validity_days
        return min(math.floor(configured), self.leaf_validity_days)


def _floor(environment: Environment) -> Floor:
    return Floor(
        f"TLSv{REQUIRED_TLS_MIN[environment]}",
        PASSWORD_FLOOR[environment],
        LEAF_VALIDITY_LIMIT[environment],
    )


# Every floor is the program's own (infra/profiles.py): one value per environment for what the
# program deploys and what the pack accepts (staging's TLS floor was 1.2 here while the
# program and the app's client required 1.3).
FLOORS: Final = {environment: _floor(environment) for environment in Environment}
# Variables programs use to say which environment they run in, and the words they use.
_DECLARING_VARIABLES: Final = frozenset(
    {"ENVIRONMENT", "APP_ENV", "NODE_ENV", "RAILS_ENV", "RACK_ENV", "DJANGO_ENV", "FLASK_ENV",
     "ASPNETCORE_ENVIRONMENT", "DEPLOY_ENV", "STAGE"}
)  # fmt: skip
_WORDS: Final = {
    "development": Environment.DEVELOPMENT, "dev": Environment.DEVELOPMENT,
    "local": Environment.DEVELOPMENT, "test": Environment.DEVELOPMENT,
    "staging": Environment.STAGING, "stage": Environment.STAGING,
    "production": Environment.PRODUCTION, "prod": Environment.PRODUCTION,
}  # fmt: skip
_ORDER: Final = (Environment.DEVELOPMENT, Environment.STAGING, Environment.PRODUCTION)


def parse(word: str) -> Environment | None:
    return _WORDS.get(word.strip().lower())


def strictest(found: Iterable[Environment]) -> Environment:
    """The strictest of the declared environments; production when none is declared."""
    declared = set(found)
    if not declared:
        return Environment.PRODUCTION
    return max(declared, key=_ORDER.index)


def declared(resources: Iterable[Resource]) -> Environment:
    """What the stack's containers declare; an unrecognised value counts as production, and so
    do `envs` the pack cannot read (the envs rules report them; a hidden declaration could be
    production)."""
    found: list[Environment] = []
    for resource in resources:
        if resource.type != CONTAINER:
            continue
        try:
            variables = envs(resource.props)
        except Unreadable:
            found.append(Environment.PRODUCTION)
            continue
        for key, value in variables:
            if key.upper() in _DECLARING_VARIABLES:
                found.append(parse(value) or Environment.PRODUCTION)
    return strictest(found)


def floor(resources: Iterable[Resource]) -> Floor:
    return FLOORS[declared(resources)]


__all__ = ["FLOORS", "Environment", "Floor", "declared", "floor", "parse", "strictest"]
