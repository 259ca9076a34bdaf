"""Request rate and connection limits at the node's door.

Theory of operation
-------------------
Each client connection owns a :class:`TokenBucket`: it holds up to ``burst``
tokens, refills at ``rate_per_s`` tokens a second, and each client request
takes one. A request that finds the bucket empty is answered ``RATE_LIMITED``
without being decoded further or reaching the Raft core, so a flooding
connection costs the node little more than reading its lines. Raft messages
between nodes are never rate-limited (a leader's AppendEntries stream would
trip any per-connection limit sized for clients, and dropping them only slows
the cluster down).

:class:`ConnectionLimiter` counts open connections per source IP, on top of the
total ``CONNECTIONS_MAX``: one host cannot take every slot.

The clock is injected (``time.monotonic`` by default) so tests drive time by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from resonetics import limits
from resonetics.errors import ResoneticsError


class RateLimitConfigError(ResoneticsError):
    """A rate-limit setting cannot be parsed or is out of range."""


@dataclass(slots=True)
class TokenBucket:
    """``rate_per_s`` requests a second on average, up to ``burst`` at once.

    ``rate_per_s == 0`` disables the limit (every ``try_take`` succeeds).
    """

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    # Invariant: 0 <= _tokens <= burst.
    _tokens: float = field(init=False)
    _last_s: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.burst < 1:
            raise RateLimitConfigError(
                f"rate limit: need rate >= 0 and burst >= 1, got {self.rate_per_s}/s burst {self.burst}"
            )
        self._tokens = float(self.burst)
        self._last_s = self.clock()

    def try_take(self, tokens: int = 1) -> bool:
        """Take ``tokens`` if the bucket holds them; False (and take nothing) otherwise."""
        rate = self.rate_per_s
        if rate == 0:
            return True
        # Taken for every line and request: plain comparisons, not max() and min().
        now = self.clock()
        elapsed = now - self._last_s
        self._last_s = now
        have = self._tokens
        if elapsed > 0:  # a clock that steps back refills nothing
            have += elapsed * rate
            if have > self.burst:
                have = float(self.burst)
        if have >= tokens:
            self._tokens = have - tokens
            return True
        self._tokens = have
        return False

    def wait_s(self, tokens: int = 1) -> float:
        """Seconds until ``tokens`` will be there (0 when they are, or with no limit)."""
        if self.rate_per_s == 0:
            return 0.0
        elapsed = max(0.0, self.clock() - self._last_s)
        have = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        return max(0.0, (tokens - have) / self.rate_per_s)

    @property
    def tokens(self) -> float:
        """Tokens held at the last ``try_take`` (for status and tests)."""
        return self._tokens


class ConnectionLimiter:
    """Open connections per source IP, bounded by ``per_ip_max``."""

    def __init__(self, per_ip_max: int = limits.CONNECTIONS_PER_IP_MAX) -> None:
        if per_ip_max < 1:
            raise RateLimitConfigError(f"connections per IP: must be >= 1, got {per_ip_max}")
        self.per_ip_max = per_ip_max
        self._open: dict[str, int] = {}

    def try_acquire(self, ip: str) -> bool:
        count = self._open.get(ip, 0)
        if count >= self.per_ip_max:
            return False
        self._open[ip] = count + 1
        return True

    def release(self, ip: str) -> None:
        count = self._open.get(ip, 0)
        assert count > 0, f"release of {ip} without a matching acquire"
        if count == 1:
            del self._open[ip]
        else:
            self._open[ip] = count - 1

    def open_count(self, ip: str) -> int:
        return self._open.get(ip, 0)


def parse_rate(text: str) -> float:
    """``"5000/s"``, ``"5000"`` or ``"0"`` (no limit) -> requests per second."""
    number = text.strip().removesuffix("/s").strip()
    try:
        rate = float(number)
    except ValueError:
        raise RateLimitConfigError(f"--rate-limit: {text!r} is not N/s (e.g. 5000/s)") from None
    if not math.isfinite(rate) or rate < 0:
        raise RateLimitConfigError(f"--rate-limit: {text!r} must be >= 0")
    return rate


__all__ = ["ConnectionLimiter", "RateLimitConfigError", "TokenBucket", "parse_rate"]
