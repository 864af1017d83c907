"""The randomized day-2 walk (tests/e2e/walk.py) on each selected stack, opt-in.

`-m walk` selects it; nothing else does (a `-m e2e` run skips it, as it does the rotation
load). SECURE_REDIS_WALK_STEPS sets the number of steps (default 12) and
SECURE_REDIS_WALK_SEED the seed (default: a new one, printed first): a failing walk is
replayed with the seed its output names:

    SECURE_REDIS_WALK_SEED=4711 .venv/bin/pytest tests/e2e --stack S -m walk -s

It changes the stack's settings, rotates everything, interrupts ups and may tear the stack
down and deploy it again (its data goes with the teardown), so run it on a stack of your own.
"""

from __future__ import annotations

import random

import pytest

from tests.e2e import walk
from tests.e2e.stacks import Stack

pytestmark = [
    pytest.mark.security("operations"),
    pytest.mark.fault,
    pytest.mark.walk,
    pytest.mark.usefixtures("stack_files_restored"),
]


def test_random_day2_walk_keeps_every_documented_promise(stack: Stack) -> None:
    seed = walk._env_int(walk.SEED_ENV, random.randrange(10**6))
    steps = walk._env_int(walk.STEPS_ENV, walk.DEFAULT_STEPS)
    print(f"walk seed {seed} (replay: {walk.SEED_ENV}={seed})", flush=True)
    problems = walk.walk(stack.name, steps, seed, lambda s: print(s, flush=True))
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)
