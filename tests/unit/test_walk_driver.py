"""The randomized day-2 walk's own logic (tests/e2e/walk.py), without a stack: what it reads
as "nothing to do" in `plan` and `status`, and that a seed replays the same steps."""

from __future__ import annotations

import random
import subprocess

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


class _Stacks(walk.Load):
    """The walk's load against a scripted stack: `store` is what the serving stack holds, and
    `up` False refuses every connection (the app torn down, the new one not yet published)."""

    store: dict[str, str]
    up: bool

    def _call(self, method: str, key: str, body: bytes | None = None) -> tuple[int, bytes]:
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")
        if method == "PUT":
            self.store[key] = (body or b"").decode()
            return 200, b""
        if key in self.store:
            return 200, self.store[key].encode()
        return 404, b""


class _OneKey(random.Random):
    def randrange(self, *args: object, **kwargs: object) -> int:
        return 7


def test_a_write_the_old_stack_acknowledged_is_not_lost_after_teardown_then_up() -> None:
    # Walks 1701 (s51) and 5201 (s52) ran the driver before 93ded8e and logged 15 and 3 keys
    # "acknowledged on the fallback not in Redis" after teardown then up. lost17 reproduced
    # it on s61 in 9 of 9 rounds (4-13 keys each): every such key's last acknowledged PUT was
    # answered by the OLD app during the step, before teardown.sh ended; after forget() a PUT
    # of the same key went unanswered while the new stack came up, which put the key back in
    # `held` while `acked_in` still named the step. The new stack never acknowledged it.
    load = _Stacks("app", "http://127.0.0.1:1", 1)
    load.store, load.up = {}, True
    load.step = "4:down_up"
    load.one(_OneKey())  # acknowledged by the old app, just before teardown.sh stops it
    load.up = False
    load.store = {}  # teardown.sh removes the volumes: nothing written before is kept
    load.forget()
    load.one(_OneKey())  # refused: the new stack is not up yet
    load.up = True  # the new stack is up; it never saw the key
    assert load.lost() == []


def test_a_write_the_new_stack_acknowledged_must_read_back() -> None:
    load = _Stacks("app", "http://127.0.0.1:1", 1)
    load.store, load.up = {}, True
    load.step = "4:down_up"
    load.forget()
    load.one(_OneKey())  # acknowledged by the new stack
    load.store.clear()  # and then lost by it
    assert load.lost() == [("walk-1-7: 404", "4:down_up")]


def _checked(monkeypatch: pytest.MonkeyPatch, windows: set[str]) -> list[str]:
    """Walk.check after a step whose one key the stack acknowledged and then did not hold."""
    quiet = subprocess.CompletedProcess[str]([], 0, "apply: plan: 37 unchanged\n", "")
    monkeypatch.setattr(walk, "py", lambda *words, timeout=0.0: quiet)
    monkeypatch.setattr(walk, "run", lambda argv, timeout: quiet)
    monkeypatch.setattr(walk, "_quick_checks", lambda stack: [])
    load = _Stacks("app", "http://127.0.0.1:1", 1)
    load.store, load.up = {}, True
    load.step = "4:step"
    load.forget()
    load.one(_OneKey())
    load.store.clear()
    walker = walk.Walk("s0", 1, False, load, lambda line: None)
    walker.check(windows)
    return walker.problems


def test_a_key_the_new_stack_acknowledged_after_teardown_then_up_is_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After teardown.sh, forget() drops every key acknowledged before it: a key left was
    # acknowledged by the new stack, on Redis or on the fallback it replays
    # (docs/client.md), so not reading it back is a lost acknowledged write, not a window.
    problems = _checked(monkeypatch, {walk.APP_AWAY, walk.REDIS_AWAY, walk.DATA_GONE})
    assert problems == ["4:step: 1 acknowledged keys lost: [('walk-1-7: 404', '4:step')]"]


def test_a_key_acknowledged_while_redis_is_replaced_is_only_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _checked(monkeypatch, {walk.APP_AWAY, walk.REDIS_AWAY}) == []
