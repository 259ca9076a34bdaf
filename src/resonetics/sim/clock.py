"""The virtual clock: one queue of events ordered by (virtual time, sequence number).

Nothing in the simulator reads the wall clock. An event is a callable scheduled
at a virtual millisecond; ties are broken by the order in which events were
scheduled (the sequence number), so a run depends only on its seed, never on
dict or heap internals.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

Action = Callable[[], None]


@dataclass(order=True, slots=True)
class _Event:
    at_ms: int
    seq: int
    action: Action = field(compare=False)


class EventQueue:
    """A discrete-event scheduler over virtual milliseconds."""

    def __init__(self) -> None:
        self._heap: list[_Event] = []
        self._seq = 0
        self.now_ms = 0
        #: Events run so far.
        self.steps = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, at_ms: int, action: Action) -> None:
        """Run ``action`` at virtual time ``at_ms`` (never in the past)."""
        self._seq += 1
        heapq.heappush(self._heap, _Event(max(at_ms, self.now_ms), self._seq, action))

    def after(self, delay_ms: int, action: Action) -> None:
        self.at(self.now_ms + delay_ms, action)

    def run_one(self, until_ms: int) -> bool:
        """Run the next event if it is due by ``until_ms``; False when there is none."""
        if not self._heap or self._heap[0].at_ms > until_ms:
            self.now_ms = max(self.now_ms, until_ms) if not self._heap else self.now_ms
            return False
        event = heapq.heappop(self._heap)
        self.now_ms = event.at_ms
        self.steps += 1
        event.action()
        return True


__all__ = ["Action", "EventQueue"]
