"""Latency statistics: percentiles, summaries, CDF points and ratios.

Pure functions over lists of seconds, so they can be checked against a dumb
oracle in tests. Percentiles use the nearest-rank method (the value at rank
``ceil(p/100 * n)``): every reported figure is a latency that was actually
observed, never an interpolation between two requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence; ``pct`` in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= pct <= 100.0:
        raise ValueError(f"pct must be within [0, 100], got {pct}")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency of one measured run, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(latencies_s: Sequence[float]) -> LatencySummary:
    """The summary of latencies given in seconds (an empty run gives all zeros)."""
    if not latencies_s:
        return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ordered = sorted(latencies_s)
    ms = 1000.0
    return LatencySummary(
        count=len(ordered),
        mean_ms=sum(ordered) / len(ordered) * ms,
        p50_ms=percentile(ordered, 50) * ms,
        p90_ms=percentile(ordered, 90) * ms,
        p99_ms=percentile(ordered, 99) * ms,
        max_ms=ordered[-1] * ms,
    )


def cdf_points(latencies_s: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """At most ``points + 1`` (latency_ms, fraction <= it) pairs, for plotting a CDF.

    Sampled at evenly spaced ranks, always including the maximum, so a plot of
    a run with a million requests stays small in the JSON file.
    """
    if not latencies_s:
        return []
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    ordered = sorted(latencies_s)
    n = len(ordered)
    step = max(1, math.ceil(n / points))
    ranks = list(range(step, n + 1, step))
    if ranks[-1] != n:
        ranks.append(n)
    return [(ordered[r - 1] * 1000.0, r / n) for r in ranks]


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the baseline measured nothing."""
    if denominator <= 0.0:
        return None
    return numerator / denominator


__all__ = ["LatencySummary", "cdf_points", "percentile", "ratio", "summarize"]
