"""Percentile math against a dumb oracle, summaries, CDF sampling and ratios."""

from __future__ import annotations

import itertools
import math

import pytest
from bench.stats import cdf_points, percentile, ratio, summarize
from hypothesis import given
from hypothesis import strategies as st

values = st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=200)


def _oracle(sorted_values: list[float], pct: float) -> float:
    """Smallest observed value with at least pct % of the values at or below it."""
    for v in sorted_values:
        if sum(1 for w in sorted_values if w <= v) * 100 >= pct * len(sorted_values):
            return v
    return sorted_values[-1]


@given(values, st.floats(0.0, 100.0))
def test_percentile_matches_oracle(xs: list[float], pct: float) -> None:
    ordered = sorted(xs)
    assert percentile(ordered, pct) == _oracle(ordered, pct)


def test_percentile_known_values() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert percentile(ordered, 50) == 50.0
    assert percentile(ordered, 99) == 99.0
    assert percentile(ordered, 100) == 100.0
    assert percentile(ordered, 0) == 1.0


def test_percentile_refuses_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_reports_milliseconds() -> None:
    s = summarize([0.001, 0.002, 0.003, 0.004])
    assert s.count == 4
    assert s.p50_ms == pytest.approx(2.0)
    assert s.max_ms == pytest.approx(4.0)
    assert s.mean_ms == pytest.approx(2.5)


def test_summarize_empty_is_zero() -> None:
    assert summarize([]).count == 0
    assert summarize([]).p99_ms == 0.0


@given(values)
def test_cdf_is_monotone_and_ends_at_one(xs: list[float]) -> None:
    points = cdf_points(xs, points=20)
    assert len(points) <= 21
    assert points[-1] == (max(xs) * 1000.0, 1.0)
    assert all(a[0] <= b[0] and a[1] < b[1] for a, b in itertools.pairwise(points))


def test_ratio() -> None:
    assert ratio(10.0, 4.0) == 2.5
    assert ratio(10.0, 0.0) is None
    assert math.isclose(ratio(1.0, 3.0) or 0.0, 1 / 3)
