"""Large stacks: the pack's work grows linearly with the number of resources.

Someone else's stack may hold thousands of resources. Every Redis server looked its files up
by reading every other container's uploads, and every property of every resource was matched
against every other resource's secrets, one resource at a time: a stack of 1000 resources took
64 s in the stack rules alone, 3000 would take ten minutes (docs/policy.md, "Large stacks").
Wall-clock time is the benchmark's business; here the rules' work is counted (Python function calls,
the same on every run), and doubling the stack must not much more than double it.
"""

from __future__ import annotations

import json
import sys
from types import FrameType
from typing import Any

import pytest

from policies.records import Record, parse_records
from policies.rules import RULES, ResourceRule
from tests.policy import foreign
from tests.policy.conftest import stack_config
from tests.policy.support import to_resources

pytestmark = pytest.mark.policy

_NAMES = ("shop-prod-cache-secrets", "shop-prod-cache-data", "shop-prod-web-secrets",
          "shop-prod-cache", "shop-prod-edge", "shop-prod-web")  # fmt: skip


def copies(count: int) -> list[Record]:
    """`count` copies of the secure foreign stack in one stack, each with its own names."""
    items: list[dict[str, Any]] = []
    for index in range(count):
        text = json.dumps(foreign.raw())
        for name in _NAMES:
            text = text.replace(f'"{name}"', f'"{name}-{index}"')
        for item in json.loads(text):
            items.append({**item, "name": f"{item['name']}-{index}"})
    return parse_records(items, source="copies", stack=foreign.STACK, project=foreign.PROJECT)


def calls_to_judge(records: list[Record]) -> tuple[int, list[str]]:
    """(Python function calls every rule makes on the stack, the violations they find)."""
    resources = to_resources(records)
    config = stack_config(foreign.STACK)
    found: list[str] = []
    counted = [0]

    def count(_frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            counted[0] += 1

    sys.setprofile(count)
    try:
        for rule in RULES:
            own = config.get(rule.name)
            settings = own if isinstance(own, dict) else {}
            if isinstance(rule, ResourceRule):
                found += [m for r in resources for m in rule.run(r, settings)]
            else:
                found += [v.message for v in rule.run(resources, settings)]
    finally:
        sys.setprofile(None)
    return counted[0], found


def test_doubling_the_stack__about_doubles_the_rules_work() -> None:
    small, small_found = calls_to_judge(copies(8))
    large, large_found = calls_to_judge(copies(16))
    assert small_found == large_found == [], (small_found, large_found)
    # Linear work doubles; the quadratic lookups made it 2.9 times (8 -> 16 copies).
    assert large <= 2.3 * small, (small, large)
