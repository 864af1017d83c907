"""How much the property tests draw (the entry-point fuzz suite,
tests/unit/test_fuzz_entry_points.py, and the others that use `drawn`), from the two
variables README names: SECURE_REDIS_FUZZ=explore draws new examples instead of the same ones
every run, SECURE_REDIS_FUZZ_SCALE=N draws N times as many."""

from __future__ import annotations

import os
from collections.abc import Mapping

from hypothesis import HealthCheck, settings


def fuzz_settings(environ: Mapping[str, str]) -> tuple[bool, int]:
    """(explore, scale). Raises ValueError, one line, for a value the variables cannot mean:
    a typo ran the usual draw (`Explore`) or raised out of collection (`abc`)."""
    mode = environ.get("SECURE_REDIS_FUZZ", "")
    if mode not in ("", "explore"):
        raise ValueError(f"SECURE_REDIS_FUZZ={mode!r}: unset it, or set it to 'explore'")
    scale = environ.get("SECURE_REDIS_FUZZ_SCALE", "") or "1"
    if not (scale.isascii() and scale.isdigit() and int(scale) >= 1):
        raise ValueError(f"SECURE_REDIS_FUZZ_SCALE={scale!r}: a whole number of at least 1")
    return mode == "explore", int(scale)


def drawn(examples: int) -> settings:
    """The settings of a property test that draws `examples` examples (times
    SECURE_REDIS_FUZZ_SCALE): the same ones every run unless SECURE_REDIS_FUZZ=explore, no
    deadline (tests/conftest.py says why), and no health check against function-scoped
    fixtures or slow draws. Usable as a decorator (`@drawn(12)`)."""
    explore, scale = fuzz_settings(os.environ)
    return settings(
        max_examples=examples * scale,
        derandomize=not explore,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
