"""Stalls of the event loop, seen from the ticker: counted, and logged as events.

Why: while the loop cannot run (a long garbage collection, freeing a big compacted log,
another thread holding the GIL) a leader sends no heartbeats and a follower reads none.
A stall near an election timeout costs the cluster its leader and looks, in the log,
like a network fault. The ticker knows when it should have woken; how late it woke is
how long the loop was kept from running. A stall longer than a third of the shortest
election timeout is counted (``status`` → ``loop``) and logged as a ``loop_stalled``
warning (at most one line per interval, the rest counted in ``held_back``), with
the usual suspects: whether a snapshot was being taken, and how many milliseconds
of the stall the cyclic garbage collector took (``gc_ms``, ``resonetics/collector.py``).
"""

from __future__ import annotations

from resonetics.server import events

#: Log at most one ``loop_stalled`` line per this many seconds.
LOG_INTERVAL_S = 5.0


class LoopLag:
    """Counts and reports ticker wake-ups later than ``threshold_s``."""

    def __init__(self, threshold_s: float, interval_s: float = LOG_INTERVAL_S) -> None:
        self.threshold_s = threshold_s
        self._lines = events.Throttle(interval_s)
        #: Stalls over the threshold since start.
        self.stalls = 0
        #: The longest stall seen, milliseconds.
        self.worst_ms = 0
        #: The wake-up time of the last stall counted: earlier deadlines belong to it.
        self._counted_until = float("-inf")
        #: The collector's running total of seconds at the previous wake-up.
        self._collector_s = 0.0

    @classmethod
    def for_timeouts(cls, tick_ms: int, election_ticks: int) -> LoopLag:
        """A third of the shortest election timeout (``election_ticks`` ticks)."""
        return cls(threshold_s=tick_ms * election_ticks / 3000)

    def observe(
        self, deadline: float, now: float, *, snapshot: bool, collector_s: float = 0.0
    ) -> events.Event | None:
        """The ticker, due at ``deadline``, woke at ``now``: the event to log, if any.

        ``collector_s`` is the process's running total of seconds in cyclic garbage
        collection (``CollectorClock.seconds``): what it grew by since the previous
        wake-up was spent collecting, inside the stall if there was one.

        After a stall the ticker runs the ticks it missed one after another, each late;
        those whose deadline fell inside a stall already counted are that same stall.
        """
        collected_s = max(0.0, collector_s - self._collector_s)
        self._collector_s = collector_s
        if deadline <= self._counted_until:
            return None
        late_s = now - deadline
        if late_s <= self.threshold_s:
            return None
        self._counted_until = now
        late_ms = round(late_s * 1000)
        self.stalls += 1
        self.worst_ms = max(self.worst_ms, late_ms)
        held = self._lines.allow(now)
        if held is None:
            return None
        fields: dict[str, events.FieldValue] = {"late_ms": late_ms, "snapshot": snapshot}
        gc_ms = round(collected_s * 1000)
        if gc_ms:
            fields["gc_ms"] = gc_ms
        if held:
            fields["held_back"] = held
        return events.Event(events.LOOP_STALLED, fields)

    def status(self) -> dict[str, int]:
        return {
            "stalls": self.stalls,
            "worst_stall_ms": self.worst_ms,
            "stall_threshold_ms": round(self.threshold_s * 1000),
        }


__all__ = ["LOG_INTERVAL_S", "LoopLag"]
