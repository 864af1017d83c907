"""The tests' own image builds take the image-build lock (tests/support/image_builds.py): the
helper holds it shared, and every image build written in tests/ runs inside it. Before,
tests/integration/test_infra_redis_image.py, tests/integration/test_rotation_probe_served.py
and tests/e2e/test_e2e_hardening.py built outside it, so a `down` beside them could remove an
untagged parent their build was about to go on from (down15's report)."""

from __future__ import annotations

import ast
import itertools
import subprocess
from pathlib import Path

import pytest

from infra.applier.build_lock import BUILD_LOCK_ENV
from infra.settings import REPO_ROOT
from tests.support.image_builds import image_build

HELPER = "image_build"
# Builds that take the lock themselves: the applier (`LocalApplier`) and build-app-image.sh;
# an argv that starts with `flock` holds it on its own.


def _is_build(node: ast.AST) -> bool:
    """`<x>.images.build(...)`, `<x>.api.build(...)`, `docker_cli("build", ...)`, or an argv
    literal with "docker", "build" in a row (not under `flock`)."""
    if isinstance(node, ast.Call):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "build"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr in ("images", "api")
        ):
            return True
        if isinstance(func, ast.Name) and func.id == "docker_cli" and node.args:
            first = node.args[0]
            return isinstance(first, ast.Constant) and first.value == "build"
    if isinstance(node, ast.List | ast.Tuple):
        words = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
        if words[:1] == ["flock"]:
            return False
        return ("docker", "build") in itertools.pairwise(words)
    return False


def _holds_lock(node: ast.With | ast.AsyncWith) -> bool:
    return any(
        isinstance(item.context_expr, ast.Call)
        and isinstance(item.context_expr.func, ast.Name)
        and item.context_expr.func.id == HELPER
        for item in node.items
    )


def unlocked_builds(source: str, where: str) -> list[str]:
    """`where:line` of every image build in `source` not inside `with image_build():`."""
    found: list[str] = []

    def visit(node: ast.AST, locked: bool) -> None:
        if isinstance(node, ast.With | ast.AsyncWith):
            locked = locked or _holds_lock(node)
        if _is_build(node) and not locked:
            found.append(f"{where}:{getattr(node, 'lineno', '?')}")
            return
        for child in ast.iter_child_nodes(node):
            visit(child, locked)

    visit(ast.parse(source), False)
    return found


def test_image_builds__every_build_in_the_tests_holds_the_build_lock() -> None:
    found = [
        hit
        for path in sorted((REPO_ROOT / "tests").rglob("*.py"))
        if path != Path(__file__).resolve()  # its own forms of a build, as data
        for hit in unlocked_builds(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert found == [], f"outside `with {HELPER}():` (tests/support/image_builds.py): {found}"


def test_image_builds__the_check_finds_a_build_outside_the_helper() -> None:
    """Positive control: each form is found when unwrapped and not when wrapped."""
    unwrapped = (
        "client.images.build(path='.')\n"
        "client.api.build(path='.')\n"
        "docker_cli('build', '.')\n"
        "subprocess.run(['docker', 'build', '.'])\n"
        "subprocess.run(['flock', '-s', 'L', 'docker', 'build', '.'])\n"
    )
    assert unlocked_builds(unwrapped, "x") == ["x:1", "x:2", "x:3", "x:4"]
    wrapped = "with image_build():\n" + "".join(f"    {line}\n" for line in unwrapped.splitlines())
    assert unlocked_builds(wrapped, "x") == []


def _try(lock: Path, mode: str) -> bool:
    """Whether another process gets the lock in `mode` (-s shared, -x exclusive) at once."""
    done = subprocess.run(["flock", "-n", mode, str(lock), "true"], check=False, timeout=30)
    return done.returncode == 0


def test_image_builds__the_helper_holds_the_build_lock_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "builds.lock"
    monkeypatch.setenv(BUILD_LOCK_ENV, str(lock))
    with image_build():
        assert not _try(lock, "-x"), "a down's exclusive lock is refused while a build runs"
        assert _try(lock, "-s"), "other builds run beside it"
    assert _try(lock, "-x")
