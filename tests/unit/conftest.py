"""Rendered stacks for the infra unit tests: the real program under Pulumi's mock runtime.

Each stack is rendered once per session (dynamic resources really generate their keys and
certificates) and shared read-only by every test; tests never mutate what they read.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from infra.pulumi_names import CONTAINER
from tests.support.build_contexts import program_contexts_read_once

if TYPE_CHECKING:
    # The program and Pulumi's SDK load on the first render, not with this file: pytest loads
    # it for every collection of tests/unit, also the `--collect-only` runs of one file that
    # tests/unit/test_script_usage.py starts (1.5 s of CPU each for the imports alone).
    from infra.render import RenderedResource, RenderedStack

STACKS = ("dev", "prod")

_CACHE: dict[str, RenderedStack] = {}


@pytest.fixture(autouse=True)
def _signal_handlers_kept() -> Iterator[None]:
    """Tests that call `infra.apply.main` in this process get its SIGINT/SIGTERM handlers (and
    after a finished action, handlers that ignore them): put the runner's back afterwards, so
    Ctrl-C still stops pytest."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in kept.items():
        signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def _no_docker_engine(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """Unit tests reach no Docker engine, whatever the machine runs: `plan` asks one when it
    can (infra/apply.py `_plan`), and would read the stacks there. A test that wants one
    (a stand-in) sets DOCKER_HOST or replaces `infra.apply._applier` itself."""
    nowhere = tmp_path_factory.getbasetemp() / "no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nowhere}")


@pytest.fixture(scope="session", autouse=True)
def _build_contexts_read_once() -> None:
    """Every render of this process tags the images with their build contexts as the first
    render found them: another worker's image test may fill app/wheelhouse/ between two
    renders a test compares (tests/support/build_contexts.py). Set up before any test's own
    fixtures, so no context a test puts in place of the program's is taken for one."""
    program_contexts_read_once()


def rendered(stack: str) -> RenderedStack:
    if stack not in _CACHE:
        from infra.render import render_stack  # noqa: PLC0415 - see the imports above

        program_contexts_read_once()  # also at collection, before any fixture is set up
        _CACHE[stack] = render_stack(stack)
    return _CACHE[stack]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> RenderedStack:
    return rendered(str(request.param))


@pytest.fixture
def dev() -> RenderedStack:
    return rendered("dev")


@pytest.fixture
def prod() -> RenderedStack:
    return rendered("prod")


def container_roles(*, one_shot: bool | None = None) -> tuple[str, ...]:
    """The role of every container the program declares (`redis`, `app-init`, `reload-tls`,
    ...), read from the rendered dev stack: a container added later is checked by every test
    parametrized with these. `one_shot`: only the run-once ones (mustRun false), or only the
    long-running ones."""
    stack = rendered("dev")
    prefix = f"secure-redis-{stack.stack}-"
    return tuple(
        sorted(
            r.props["name"].removeprefix(prefix)
            for r in stack.of_type(CONTAINER)
            if one_shot is None or (r.props.get("mustRun") is False) == one_shot
        )
    )


def container(stack: RenderedStack, role: str) -> RenderedResource:
    """`role` is redis, app, redis-init or app-init."""
    return stack.named(f"secure-redis-{stack.stack}-{role}")


def argv_value(command: list[str], flag: str) -> str | None:
    """The value after `--flag` on a redis-server argv (the last one wins, as in Redis)."""
    values = [command[i + 1] for i, word in enumerate(command[:-1]) if word == flag]
    return values[-1] if values else None


def labels(resource: RenderedResource) -> dict[str, Any]:
    return {item["label"]: item["value"] for item in resource.props.get("labels", [])}


def uploads(resource: RenderedResource) -> dict[str, dict[str, Any]]:
    """Upload entries of an init container by file name."""
    return {u["file"].rsplit("/", 1)[-1]: u for u in resource.props.get("uploads", [])}
