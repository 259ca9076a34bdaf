"""Work done in steps: a generator that yields between slices and returns its result.

Why: the node's loop must not stop for long (an election timeout is 300 ms), so work
that grows with the state (taking a snapshot, reading one in) is written as such a
generator, and the loop runs one step per turn. Tests, start-up and tools, where
nothing waits, run it to the end at once with ``run_to_end``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

T = TypeVar("T")


def run_to_end(steps: Generator[None, None, T]) -> T:
    """Run every step of ``steps`` now; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


__all__ = ["run_to_end"]
