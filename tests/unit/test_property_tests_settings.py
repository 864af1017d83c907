"""Every property test draws the same examples every run and has no deadline, unless
SECURE_REDIS_FUZZ=explore (tests/conftest.py loads the profile; tests/support/fuzzing.py): one
that named no settings of its own drew new examples each run, or failed an example that took
over Hypothesis's default 200 ms on a busy machine, so a red run did not repeat."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path

import hypothesis
import pytest

from infra.settings import REPO_ROOT
from tests.support.fuzzing import fuzz_settings

PROPERTY_TEST_FILES = sorted(
    path.relative_to(REPO_ROOT)
    for path in (REPO_ROOT / "tests").rglob("test_*.py")
    if re.search(r"^@given\(", path.read_text(encoding="utf-8"), re.MULTILINE)
)


def test_positive_control__property_test_files_are_found() -> None:
    assert Path("tests/policy/test_policy_odd_shapes.py") in PROPERTY_TEST_FILES
    assert Path("tests/unit/test_cache_core.py") in PROPERTY_TEST_FILES


@pytest.mark.parametrize("path", PROPERTY_TEST_FILES, ids=str)
def test_property_tests__draw_the_same_examples_every_run_with_no_deadline(path: Path) -> None:
    explore, _scale = fuzz_settings(os.environ)
    if explore:
        pytest.skip("SECURE_REDIS_FUZZ=explore draws new examples on purpose")
    module = importlib.import_module(".".join(path.with_suffix("").parts))
    tests = [
        test
        for test in vars(module).values()
        if inspect.isfunction(test) and getattr(test, "is_hypothesis_test", False) is True
    ]
    assert tests, f"{path} has @given but no property test was found in it"
    for test in tests:
        used = getattr(test, "_hypothesis_internal_use_settings", hypothesis.settings())
        assert (used.derandomize, used.deadline) == (True, None), f"{path}: {test.__name__}"
