"""Which of the benchmark's targets a run held, and naming the ones it missed
(scripts/bench_goals.py).

A run reported `goals_met` alone until 2026-12-06, and the JSON line of a run that missed one
bar out of nine did not say which: the docs had to work it out from the ratios.
"""

from __future__ import annotations

from typing import Any

import pytest

from scripts.bench_goals import Goal, goals, missed


def _sizes_part(**overrides: Any) -> dict[str, Any]:
    """The sizes part of a summary with every target held."""
    summary: dict[str, Any] = {
        "ratio_sequential": 1.05,
        "ratio_pipelined": 1.02,
        "encrypt_decrypt_us_1k": 3.1,
        "connect_ms_p50": 2.36,
        "ratio_vs_tls_transport": {
            size: {"seq": 0.95, "pipe": 0.97} for size in ("1KiB", "10KiB", "100KiB")
        },
    }
    summary.update(overrides)
    return summary


def test_a_run_that_held_every_target_misses_none() -> None:
    checked = goals({**_sizes_part(), "ratio_vs_ceiling_c50": 0.98})
    assert len(checked) == 9
    assert all(goal.held for goal in checked)
    assert missed(checked) == []


def test_the_one_bar_a_run_missed_is_named_with_its_value_and_bound() -> None:
    versus_tls = _sizes_part()["ratio_vs_tls_transport"]
    versus_tls["100KiB"]["seq"] = 0.865
    checked = goals(_sizes_part(ratio_vs_tls_transport=versus_tls))
    assert missed(checked) == ["ratio_vs_tls_transport.100KiB.seq 0.865 (at least 0.9)"]


def test_costs_are_bounds_from_above_and_ratios_from_below() -> None:
    checked = goals(_sizes_part(encrypt_decrypt_us_1k=5.5, ratio_pipelined=0.94))
    assert missed(checked) == [
        "ratio_pipelined 0.94 (at least 0.95)",
        "encrypt_decrypt_us_1k 5.5 (at most 5.0)",
    ]


@pytest.mark.parametrize(
    ("value", "bound", "at_most", "held"),
    [
        (0.9, 0.9, False, True),
        (0.8999, 0.9, False, False),
        (5.0, 5.0, True, True),
        (5.01, 5.0, True, False),
    ],
)
def test_a_bound_itself_holds(value: float, bound: float, at_most: bool, held: bool) -> None:
    assert Goal("figure", value, bound, at_most=at_most).held is held


def test_1_kib_against_tls_transport_is_not_a_target() -> None:
    # At 1 KiB the bar is against plaintext redis-py (docs/client.md, "Benchmark").
    versus_tls = _sizes_part()["ratio_vs_tls_transport"]
    versus_tls["1KiB"] = {"seq": 0.5, "pipe": 0.5}
    assert missed(goals(_sizes_part(ratio_vs_tls_transport=versus_tls))) == []


def test_only_the_parts_that_ran_are_checked() -> None:
    assert goals({}) == []
    concurrency_only = goals({"ratio_vs_ceiling_c50": 0.4})
    assert missed(concurrency_only) == ["ratio_vs_ceiling_c50 0.4 (at least 0.5)"]
    assert [goal.figure for goal in goals(_sizes_part())][:4] == [
        "ratio_sequential",
        "ratio_pipelined",
        "encrypt_decrypt_us_1k",
        "connect_ms_p50",
    ]
