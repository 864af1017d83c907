"""How many examples the fuzz tests draw (tests/unit/test_fuzz_entry_points.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SCALE_ENV: Final = "SECURE_REDIS_FUZZ_SCALE"


def scale(env: Mapping[str, str]) -> int:
    """SECURE_REDIS_FUZZ_SCALE as a whole number of at least 1 (unset or empty: 1)."""
    raw = env.get(SCALE_ENV, "").strip() or "1"
    if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
        raise ValueError(f"{SCALE_ENV}={raw!r}: give a whole number, 1 or more")
    return int(raw)
