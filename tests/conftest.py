"""Marks each test by its layer (the directory it lives in), so `-m unit` etc. select layers."""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis
import pytest

from tests.support.fuzzing import fuzz_settings

_LAYERS = ("unit", "policy", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    """A documented variable with a value it cannot mean stops the run with one line.

    Every property test draws the same examples every run unless SECURE_REDIS_FUZZ=explore
    (tests/support/fuzzing.py), and none has a deadline: those that named no settings of
    their own drew new examples each run (tests/policy/test_policy_odd_shapes.py) and failed
    any example that took over 200 ms, Hypothesis's default, on a machine busy with other
    work (tests/unit/test_cache_core.py), so a run could go red that the next run did not
    repeat. Loaded here, before any test module makes its settings from it."""
    try:
        explore, _scale = fuzz_settings(os.environ)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    hypothesis.settings.register_profile("secure-redis", derandomize=not explore, deadline=None)
    hypothesis.settings.load_profile("secure-redis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for layer in _LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
