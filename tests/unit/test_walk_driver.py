"""The randomized day-2 walk's own logic (tests/e2e/walk.py), without a stack: what it reads
as "nothing to do" in `plan` and `status`, and that a seed replays the same steps."""

from __future__ import annotations

import random

import pytest

from tests.e2e import walk

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("said", "nothing"),
    [
        ("apply: plan: 37 unchanged\napply: plan finished in 2.3s\n", True),
        ("apply: next up: 37 unchanged (`python -m infra.apply plan --stack s51` shows ...)", True),
        ("apply: plan: 1 to update, 1 to replace, 35 unchanged\n", False),
        (
            "apply: next up: update secrets-api-token\n"
            "apply: next up: 1 to update, 36 unchanged (`python -m infra.apply plan` ...)",
            False,
        ),
        ("apply: next up: not checked against the engine: no engine\n", False),
        ("", False),
    ],
)
def test_nothing_to_do_reads_the_summary_line(said: str, nothing: bool) -> None:
    assert walk._nothing_to_do(said) is nothing


def test_a_seed_replays_the_same_steps() -> None:
    names = [n for n, _ in walk.ACTIONS]
    weights = [w for _, w in walk.ACTIONS]

    def steps(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [rng.choices(names, weights)[0] for _ in range(30)]

    assert steps(1703) == steps(1703)
    assert steps(1703) != steps(1704)


@pytest.mark.parametrize("production", [False, True])
def test_every_memory_value_the_walk_sets_keeps_the_fork_headroom(production: bool) -> None:
    # docs/stack-settings.md: redisMemoryMb at least twice redisMaxmemoryMb plus 93.
    settings = walk._settings(production)
    limits = [int(v) for v in settings["redisMemoryMb"][0]]
    maxmemory = [int(v) for v in settings["redisMaxmemoryMb"][0]]
    assert min(limits) >= 2 * max(maxmemory) + 93
