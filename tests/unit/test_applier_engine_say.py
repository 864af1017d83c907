"""The local applier's messages from the threads of an up's steps (infra/applier/engine.py):
one at a time, so no two steps' lines run together.

No assertion on time: two messages overlap exactly when both callers are inside `say` at once
(a barrier both must reach), which the applier must never let happen.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

from infra.applier.engine import LocalApplier
from infra.naming import STACK_LABEL

# Long enough for two threads to meet on a loaded machine when nothing keeps them apart.
_MEET_S = 5.0


def test_say__two_steps_messages_never_overlap() -> None:
    inside = threading.Barrier(2, timeout=_MEET_S)
    overlapped: list[str] = []

    def say(message: str) -> None:
        # A `say` that writes in parts (as print writes a line, then its newline): both
        # callers reach the barrier only when both are inside at once.
        try:
            inside.wait()
        except threading.BrokenBarrierError:
            return  # alone inside: the other waits for this one to end
        overlapped.append(message)

    applier = LocalApplier(cast(Any, SimpleNamespace(api=None)), say=say)
    steps = [threading.Thread(target=applier.say, args=(f"step {n}",), daemon=True) for n in (1, 2)]
    for step in steps:
        step.start()
    for step in steps:
        step.join(timeout=4 * _MEET_S)
    assert not any(step.is_alive() for step in steps)
    assert overlapped == []


def test_build__each_step_line_names_its_image() -> None:
    """An up builds the app, exporter and rotation images at once from one Dockerfile: their
    steps, unnamed, ran together in one log, three lines of each step."""
    said: list[str] = []

    class Api:
        def build(self, **_kwargs: Any) -> Any:
            yield {"stream": "Step 1/2 : FROM debian:bookworm-slim\n"}
            yield {"stream": " ---> Using cache\n"}
            yield {"aux": {"ID": "sha256:0123"}}

        def inspect_image(self, _image: str) -> dict[str, Any]:
            return {"Id": "sha256:0123", "Config": {"Labels": {STACK_LABEL: "dev"}}}

    applier = LocalApplier(cast(Any, SimpleNamespace(api=Api())), say=said.append)
    spec = SimpleNamespace(tag="secure-redis-dev-exporter:3ed9372a1f85", build_kwargs={})
    assert applier._build_locked(cast(Any, spec), "dev") == "sha256:0123"
    assert said == ["  secure-redis-dev-exporter: Step 1/2 : FROM debian:bookworm-slim"]
