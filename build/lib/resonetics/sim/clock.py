"""The virtual clock: one queue of events ordered by (virtual time, sequence number).

Nothing in the simulator reads the wall clock. An event is a callable scheduled
at a virtual millisecond; ties are broken by the order in which events were
scheduled (the sequence number), so a run depends only on its seed, never on
dict or heap internals.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any, TypeVar

Action = Callable[[], None]
T = TypeVar("T")
#: (virtual time, sequence number, function, argument): a plain tuple, because the heap
#: compares events millions of times per sweep and tuple comparison runs in C. The
#: sequence number is unique, so the comparison never reaches the function. An event
#: scheduled with ``call_at`` runs ``function(argument)``; one scheduled with ``at``
#: has ``_NO_ARGUMENT`` there and runs ``function()``. The argument spares the
#: commonest event (a message arriving) a closure or ``functools.partial`` of its own.
_Event = tuple[int, int, Callable[..., object], Any]
_NO_ARGUMENT: Any = object()


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
        now = self.now_ms
        heapq.heappush(self._heap, (at_ms if at_ms > now else now, self._seq, action, _NO_ARGUMENT))

    def after(self, delay_ms: int, action: Action) -> None:
        """``at(now + delay_ms, action)``, inlined: ticks and timers schedule this way."""
        self._seq += 1
        now = self.now_ms
        at_ms = now + delay_ms if delay_ms > 0 else now
        heapq.heappush(self._heap, (at_ms, self._seq, action, _NO_ARGUMENT))

    def call_at(self, at_ms: int, function: Callable[[T], object], argument: T) -> None:
        """Run ``function(argument)`` at virtual time ``at_ms`` (never in the past): as
        ``at`` with a closure over ``argument``, without building one."""
        self._seq += 1
        now = self.now_ms
        heapq.heappush(self._heap, (at_ms if at_ms > now else now, self._seq, function, argument))

    def call_after(self, delay_ms: int, function: Callable[[T], object], argument: T) -> None:
        """``call_at(now + delay_ms, ...)``, inlined: every message is scheduled this way."""
        self._seq += 1
        now = self.now_ms
        at_ms = now + delay_ms if delay_ms > 0 else now
        heapq.heappush(self._heap, (at_ms, self._seq, function, argument))

    def run_one(self, until_ms: int) -> bool:
        """Run the next event if it is due by ``until_ms``; False when there is none."""
        heap = self._heap
        if not heap or heap[0][0] > until_ms:
            self.now_ms = max(self.now_ms, until_ms) if not heap else self.now_ms
            return False
        at_ms, _, function, argument = heapq.heappop(heap)
        self.now_ms = at_ms
        self.steps += 1
        if argument is _NO_ARGUMENT:
            function()
        else:
            function(argument)
        return True

    def run_until(self, until_ms: int, pending_max: int) -> bool:
        """Run every event due by ``until_ms`` (as ``run_one`` in a loop); False, right
        after the event that did it, if more than ``pending_max`` events are waiting.

        The loop of a run: one call instead of one per event (a run has thousands).
        """
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until_ms:
            at_ms, _, function, argument = pop(heap)
            self.now_ms = at_ms
            self.steps += 1
            if argument is _NO_ARGUMENT:
                function()
            else:
                function(argument)
            if len(heap) > pending_max:
                return False
        if not heap:
            self.now_ms = max(self.now_ms, until_ms)
        return True


__all__ = ["Action", "EventQueue"]
