"""One policy pack server per test session, and the two real stacks rendered once.

Everything that claims "the pack rejects X" goes through `analyze`, i.e. the real pack over
pulumi_policy's analyzer gRPC interface, exactly as `python -m policies.check` drives it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from policies.analyzer import Finding, PackServer
from policies.check import evaluate
from policies.records import Record, from_rendered
from policies.strictness import CONFIG_DIR

Analyze = Callable[..., list[Finding]]


def stack_config(stack: str) -> dict[str, Any]:
    """The policy config the CLI and the CI workflow use for this stack."""
    path = CONFIG_DIR / f"{stack}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@pytest.fixture(scope="session")
def pack() -> Iterator[PackServer]:
    with PackServer() as server:
        yield server


@pytest.fixture(scope="session")
def analyze(pack: PackServer) -> Analyze:
    def run(records: Sequence[Record], config: Mapping[str, Any] | None = None) -> list[Finding]:
        chosen = stack_config(records[0].stack) if config is None else dict(config)
        return evaluate(pack, records, chosen)

    return run


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Record]]:
    from infra.render import render_stack  # noqa: PLC0415 - only these tests need the program

    return {stack: from_rendered(render_stack(stack).resources) for stack in ("dev", "prod")}
