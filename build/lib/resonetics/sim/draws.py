"""``random.Random.randint`` without its three layers of Python calls, same values.

The network draws a latency for every message a run sends (tens of thousands
per sweep seed), and ``randint`` goes ``randint -> randrange -> _randbelow``
before it reaches ``getrandbits``. ``draw_int`` takes the same path in one call:
``randint(low, high)`` is ``low + _randbelow(high - low + 1)``, and
``_randbelow(n)`` draws ``n.bit_length()`` bits until the number is below ``n``
(CPython's ``_randbelow_with_getrandbits``, the one a plain ``random.Random``
uses). Same draws from the generator, same values: a run is the same run, bit
for bit. ``tests/sim/test_draws.py`` holds it to ``randint`` itself (the oracle),
so a Python whose ``randint`` draws differently fails there, not in a replay.
"""

from __future__ import annotations

import random


def draw_int(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint(low, high)``: the same value, with the same draws from ``rng``."""
    n = high - low + 1
    if n <= 0:
        raise ValueError(f"empty range for draw_int({low}, {high})")
    k = n.bit_length()
    getrandbits = rng.getrandbits
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return low + r


__all__ = ["draw_int"]
