"""Running a sliced snapshot (``snapshot_steps``) to its end, as the tests of the machine need."""

from __future__ import annotations

from collections.abc import Generator


def drain(steps: Generator[None, None, bytes]) -> bytes:
    """Every step of a sliced snapshot, then the bytes it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: bytes = done.value
            return result
