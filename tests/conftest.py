"""Marks each test by its layer (the directory it lives in), so `-m unit` etc. select layers."""

from __future__ import annotations

from pathlib import Path

import pytest

_LAYERS = ("unit", "policy", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for layer in _LAYERS:
            if layer in parts:
                item.add_marker(getattr(pytest.mark, layer))
