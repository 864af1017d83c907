"""Shared pieces of the dynamic providers: input normalisation and revisions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pulumi.dynamic import CheckFailure

# The serialized provider travels with every dynamic resource; it is never an input we diff.
PROVIDER_KEY: Final = "__provider"


class ChangeRefused(RuntimeError):
    """A provider's `diff` refuses a change it must not make (its message says why and the way
    on, never a secret). Under `pulumi up` the engine stops with it; the local applier's render
    (infra/mock_engine.py) turns it into its one-line refusal."""


def new_revision() -> str:
    """A fresh, meaningless identifier: it changes exactly when material is (re)generated."""
    return uuid.uuid4().hex


def as_int(
    props: Mapping[str, Any], key: str, failures: list[CheckFailure], *, minimum: int
) -> int | None:
    """Protobuf numbers arrive as floats; accept integral numbers only."""
    value = props.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        failures.append(CheckFailure(key, f"{key} must be an integer"))
        return None
    if value < minimum:
        failures.append(CheckFailure(key, f"{key} must be at least {minimum}, got {int(value)}"))
        return None
    return int(value)


def as_str_list(props: Mapping[str, Any], key: str, failures: list[CheckFailure]) -> list[str]:
    value = props.get(key) or []
    if not isinstance(value, Sequence) or isinstance(value, str):
        failures.append(CheckFailure(key, f"{key} must be a list of strings"))
        return []
    return [str(v) for v in value]


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    return [k for k in keys if olds.get(k) != news.get(k)]


def inputs_only(props: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: props[k] for k in keys if k in props}


__all__ = [
    "PROVIDER_KEY",
    "ChangeRefused",
    "as_int",
    "as_str_list",
    "changed",
    "inputs_only",
    "new_revision",
]
