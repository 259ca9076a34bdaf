"""How often the cyclic garbage collector ran in this process, and how long it stopped it.

Theory of operation
-------------------
A full collection walks every tracked object and container, the state machine's
included, with the event loop stopped. It runs once the oldest generation has grown
by a quarter, so anything tracked that a node keeps alive for a while, made per write,
brings it on again and again. That is what session results were until they were kept
encoded (``machine/sessions.py``): on a store growing to a million keys under 256
writes in flight, each node ran 19-27 full collections of 80-180 ms and spent 2.5-3 s
of CPU collecting (``bench/large_store.py``); afterwards one full collection and about
0.5 s. The collector's thresholds are left at Python's defaults: with that churn gone,
raising them (50,000, 20, 10) made no difference measured in the same bench.

So that the next such regression is visible where an operator looks, ``CollectorClock``
hooks ``gc.callbacks``: ``status`` → ``gc`` gives the collections per generation, the
seconds spent and the longest pause, and a ``loop_stalled`` event says how many of its
milliseconds the collector took (``gc_ms``). Each collection costs the clock two clock
reads. It counts the whole process's collections: two nodes in one process each see
all of them.
"""

from __future__ import annotations

import gc
import time
from typing import Any


class CollectorClock:
    """Counts the process's cyclic collections and the seconds they took."""

    def __init__(self) -> None:
        #: Collections finished since ``install``, per generation (2: a full collection).
        self.collections = [0, 0, 0]
        #: Seconds spent in collections since ``install``.
        self.seconds = 0.0
        #: The longest single collection, seconds.
        self.longest_s = 0.0
        self._started: float | None = None

    def install(self) -> None:
        """Start counting (idempotent)."""
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def remove(self) -> None:
        """Stop counting (idempotent); the counts stay."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:  # installed while a collection ran
            return
        took = time.perf_counter() - self._started
        self._started = None
        self.collections[info["generation"]] += 1
        self.seconds += took
        self.longest_s = max(self.longest_s, took)

    def status(self) -> dict[str, Any]:
        return {
            "collections": list(self.collections),
            "seconds": round(self.seconds, 3),
            "longest_ms": round(self.longest_s * 1000, 1),
            "thresholds": list(gc.get_threshold()),
        }


__all__ = ["CollectorClock"]
