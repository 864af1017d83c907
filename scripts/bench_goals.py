"""The benchmark's targets and which of them a run held (scripts/bench.py; docs/client.md,
"Benchmark"). Pure: a run's summary in, the checks out.

A run used to report `goals_met` alone, and a reader had to find which of its nine figures
fell short; `missed` names each, with its value and bound, in the JSON and the printed report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# 1 KiB against plaintext redis-py: at least 0.95, so that the large-value work costs small
# values nothing (0.85 until 2026-12-02).
RATIO_VS_PLAINTEXT_1K: Final = 0.95
ENCRYPT_DECRYPT_US_1K: Final = 5.0
CONNECT_MS_P50: Final = 5.0
RATIO_VS_CEILING_C50: Final = 0.5
RATIO_VS_TLS_TRANSPORT: Final = 0.9  # 10 and 100 KiB, sequential and pipelined
TLS_TRANSPORT_SIZES: Final = ("10KiB", "100KiB")
MODES: Final = ("seq", "pipe")


@dataclass(frozen=True)
class Goal:
    """One figure of a run's summary and the bound it should keep."""

    figure: str  # its path in the JSON, dotted: "ratio_vs_tls_transport.100KiB.seq"
    value: float
    bound: float
    at_most: bool = False  # a cost (microseconds, milliseconds) rather than a ratio

    @property
    def held(self) -> bool:
        return self.value <= self.bound if self.at_most else self.value >= self.bound

    def __str__(self) -> str:
        side = "at most" if self.at_most else "at least"
        return f"{self.figure} {self.value} ({side} {self.bound})"


def goals(summary: Mapping[str, Any]) -> list[Goal]:
    """The targets of the parts that ran: the sizes part's when its figures are in the
    summary, the concurrency part's when its ratio is."""
    checked: list[Goal] = []
    if "ratio_sequential" in summary:
        checked += [
            Goal("ratio_sequential", summary["ratio_sequential"], RATIO_VS_PLAINTEXT_1K),
            Goal("ratio_pipelined", summary["ratio_pipelined"], RATIO_VS_PLAINTEXT_1K),
            Goal(
                "encrypt_decrypt_us_1k",
                summary["encrypt_decrypt_us_1k"],
                ENCRYPT_DECRYPT_US_1K,
                at_most=True,
            ),
            Goal("connect_ms_p50", summary["connect_ms_p50"], CONNECT_MS_P50, at_most=True),
        ]
        versus_tls = summary["ratio_vs_tls_transport"]
        checked += [
            Goal(
                f"ratio_vs_tls_transport.{size}.{mode}",
                versus_tls[size][mode],
                RATIO_VS_TLS_TRANSPORT,
            )
            for size in TLS_TRANSPORT_SIZES
            for mode in MODES
        ]
    if "ratio_vs_ceiling_c50" in summary:
        checked.append(
            Goal("ratio_vs_ceiling_c50", summary["ratio_vs_ceiling_c50"], RATIO_VS_CEILING_C50)
        )
    return checked


def missed(checked: list[Goal]) -> list[str]:
    """Each goal a run did not hold, as the JSON's `goals_missed` lists it."""
    return [str(goal) for goal in checked if not goal.held]


__all__ = ["Goal", "goals", "missed"]
