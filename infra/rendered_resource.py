"""One resource as the render records it: what the engine was asked to register and answered.

The recording monitor (infra/mock_engine.py) builds these; the render (infra/render.py), the
local applier and the tests read them. `to_record()` is the redacted form `python -m
infra.preview --json` prints and `python -m policies.check --resources` reads.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from infra.changes import Change
from infra.proppath import PropPath, get

REDACTED: Final = "[secret]"
"""What a secret leaf reads as in a redacted record."""


@dataclass(frozen=True)
class RenderedResource:
    type: str
    name: str
    urn: str
    props: dict[str, Any]
    """Inputs as the engine hands them to policies: camelCase, secrets unwrapped."""
    secret_paths: tuple[PropPath, ...]
    """Where in `props` a value arrived secret, e.g. ("uploads", 4, "content")."""
    options: dict[str, Any]
    """parent, dependencies, protect, provider, additionalSecretOutputs, and a few more."""
    id: str = ""
    custom: bool = True
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the engine would return: inputs echoed, plus computed outputs (secrets unwrapped)."""
    secret_outputs: tuple[str, ...] = ()
    change: Change | None = None
    """Dynamic resources: created, kept (same), updated or replaced by the render."""
    state_inputs: dict[str, Any] = field(default_factory=dict)
    """Dynamic resources: their checked inputs, as the state keeps them."""

    def to_record(self, redact: bool = True) -> dict[str, Any]:
        """`{"type","name","props","urn","options"}`, secret leaves replaced by "[secret]"."""
        props = _redacted(self.props, self.secret_paths) if redact else copy.deepcopy(self.props)
        return {
            "type": self.type,
            "name": self.name,
            "props": props,
            "urn": self.urn,
            "options": copy.deepcopy(self.options),
        }

    def secret_values(self) -> Iterator[Any]:
        """Every value that is secret, in props or outputs (for leak checks)."""
        for path in self.secret_paths:
            yield get(self.props, path)
        for key in self.secret_outputs:
            yield self.outputs[key]


def _redacted(props: dict[str, Any], paths: tuple[PropPath, ...]) -> dict[str, Any]:
    result = copy.deepcopy(props)
    for path in paths:
        if not path:
            continue
        parent = get(result, path[:-1])
        parent[path[-1]] = REDACTED
    return result


__all__ = ["REDACTED", "RenderedResource"]
