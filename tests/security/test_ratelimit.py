"""The token bucket and the per-IP connection limit, driven by an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resonetics import limits
from resonetics.security.ratelimit import (
    ConnectionLimiter,
    RateLimitConfigError,
    TokenBucket,
    parse_rate,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock)
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]


def test_tokens_refill_at_the_rate_and_stop_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock)
    for _ in range(5):
        bucket.try_take()
    clock.now += 0.25  # 2.5 tokens
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    clock.now += 3600
    assert sum(bucket.try_take() for _ in range(10)) == 5  # capped at burst


def test_a_refused_take_costs_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 1, clock)
    assert bucket.try_take()
    for _ in range(100):
        assert not bucket.try_take()
    clock.now += 1.0
    assert bucket.try_take()


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100, 1, clock)
    assert bucket.try_take()
    clock.now -= 50
    assert not bucket.try_take()


def test_rate_zero_means_unlimited() -> None:
    bucket = TokenBucket(0, 1, FakeClock())
    assert all(bucket.try_take() for _ in range(10_000))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(RateLimitConfigError):
        TokenBucket(-1, 5)
    with pytest.raises(RateLimitConfigError):
        TokenBucket(10, 0)
    with pytest.raises(RateLimitConfigError):
        ConnectionLimiter(0)


@given(
    rate=st.integers(1, 1000),
    burst=st.integers(1, 1000),
    steps=st.lists(st.tuples(st.floats(0, 2), st.integers(1, 50)), max_size=50),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: int, burst: int, steps: list[tuple[float, int]]
) -> None:
    """Oracle: over any window from the start, granted <= burst + rate * elapsed."""
    clock = FakeClock()
    start = clock.now
    bucket = TokenBucket(rate, burst, clock)
    granted = 0
    for advance, attempts in steps:
        clock.now += advance
        granted += sum(bucket.try_take() for _ in range(attempts))
        assert granted <= burst + rate * (clock.now - start) + 1e-6
        assert 0 <= bucket.tokens <= burst


def test_connection_limiter_counts_per_ip() -> None:
    limiter = ConnectionLimiter(2)
    assert limiter.try_acquire("10.0.0.1") and limiter.try_acquire("10.0.0.1")
    assert not limiter.try_acquire("10.0.0.1")
    assert limiter.try_acquire("10.0.0.2")
    limiter.release("10.0.0.1")
    assert limiter.open_count("10.0.0.1") == 1
    assert limiter.try_acquire("10.0.0.1")
    limiter.release("10.0.0.2")
    assert limiter.open_count("10.0.0.2") == 0


def test_default_limits_are_generous() -> None:
    assert limits.RATE_LIMIT_RPS_DEFAULT >= 5_000
    assert limits.RATE_LIMIT_BURST_DEFAULT >= 10_000
    assert limits.CONNECTIONS_PER_IP_MAX <= limits.CONNECTIONS_MAX


@pytest.mark.parametrize(("text", "rate"), [("5000/s", 5000.0), ("12.5", 12.5), ("0", 0.0)])
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-1/s", "nan", "inf/s", ""])
def test_parse_rate_refuses_nonsense(text: str) -> None:
    with pytest.raises(RateLimitConfigError, match="--rate-limit"):
        parse_rate(text)
