"""What an `up` does to one resource, and why: the vocabulary of `pulumi preview --diff`.

The render (dynamic resources, decided by their provider's `diff`) and the local applier
(Docker objects, decided by comparing declarations) both report in these terms, so `plan`
prints one list. Reasons are property paths, never values: values may be secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Op(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    SAME = "same"


@dataclass(frozen=True)
class Change:
    urn: str
    type: str
    name: str
    """The logical (Pulumi) name, or the Docker object name for Docker objects."""
    op: Op
    reasons: tuple[str, ...] = ()
    """Changed property paths or one sentence; never a value."""

    def describe(self) -> str:
        why = f" ({'; '.join(self.reasons)})" if self.reasons else ""
        return f"{self.op.value:<7} {self.name}{why}"


__all__ = ["Change", "Op"]
