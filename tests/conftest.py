"""Marks each test by its layer (the directory it lives in), so `-m unit` etc. select layers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.fuzzing import fuzz_settings

_LAYERS = ("unit", "policy", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    """A documented variable with a value it cannot mean stops the run with one line."""
    try:
        fuzz_settings(os.environ)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for layer in _LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
