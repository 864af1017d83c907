"""The environment a stack declares, and the floor of strictness that follows from it.

Strictness follows what the stack itself says it is (an `ENVIRONMENT=production` on its
containers, the stack config's `secure-redis:environment`), never its name and never a path
built from a URN. Where the declarations disagree or say nothing, the strictest applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from infra.profiles import PASSWORD_FLOOR, Environment
from policies.rules._model import CONTAINER, Resource
from policies.rules._props import envs


@dataclass(frozen=True)
class Floor:
    """The least an environment accepts; policy config can only tighten it."""

    tls_minimum: str
    password_length: int
    leaf_validity_days: int


# The password floors are the program's own (infra/profiles.py): one number per environment
# for what the program generates and what the pack accepts.
FLOORS: Final = {
    Environment.DEVELOPMENT: Floor("TLSv1.2", PASSWORD_FLOOR[Environment.DEVELOPMENT], 90),
    Environment.STAGING: Floor("TLSv1.2", PASSWORD_FLOOR[Environment.STAGING], 90),
    Environment.PRODUCTION: Floor("TLSv1.3", PASSWORD_FLOOR[Environment.PRODUCTION], 30),
}
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
    """What the stack's containers declare; an unrecognised value counts as production."""
    found: list[Environment] = []
    for resource in resources:
        if resource.type != CONTAINER:
            continue
        for key, value in envs(resource.props):
            if key.upper() in _DECLARING_VARIABLES:
                found.append(parse(value) or Environment.PRODUCTION)
    return strictest(found)


def floor(resources: Iterable[Resource]) -> Floor:
    return FLOORS[declared(resources)]


__all__ = ["FLOORS", "Environment", "Floor", "declared", "floor", "parse", "strictest"]
