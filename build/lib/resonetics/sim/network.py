"""A faulty network between simulated endpoints (nodes and clients).

Every send is decided at once from the network's own seeded ``Random``: lost,
delivered after a random latency (so messages reorder), or delivered twice.
Partitions are a set of blocked *directed* links, so one-way (asymmetric)
partitions are as easy as symmetric ones; a blocked link silently loses what
is sent over it, as a real partition does. Whether a message arrives at a node
that has crashed meanwhile is the receiver's business (``cluster.py``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from resonetics.sim.clock import EventQueue
from resonetics.sim.draws import draw_int
from resonetics.sim.trace import Trace

Deliver = Callable[[], object]
T = TypeVar("T")

#: Latency of a healthy link (virtual milliseconds).
BASE_LATENCY_MIN_MS = 1
BASE_LATENCY_MAX_MS = 2


@dataclass(slots=True)
class NetworkProfile:
    """How unreliable the network is right now (all zero: a perfect, fast network)."""

    drop_p: float = 0.0
    dup_p: float = 0.0
    latency_min_ms: int = BASE_LATENCY_MIN_MS
    latency_max_ms: int = BASE_LATENCY_MAX_MS
    #: Chance that a message is held far longer than usual (a stalled route).
    slow_p: float = 0.0
    slow_ms: int = 0


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    blocked: int = 0
    #: Messages held longer than the network's base latency (reordering possible).
    delayed: int = 0


def _call(deliver: Deliver) -> object:
    return deliver()


class Network:
    """Schedules deliveries on the event queue, with the faults of its profile."""

    def __init__(self, queue: EventQueue, rng: random.Random, trace: Trace) -> None:
        self._queue = queue
        self._rng = rng
        self._trace = trace
        self.profile = NetworkProfile()
        self.stats = NetworkStats()
        #: Directed links (src, dst) that currently lose everything.
        self.blocked: set[tuple[str, str]] = set()

    def send(self, src: str, dst: str, what: object, deliver: Deliver) -> None:
        """Carry ``what`` from ``src`` to ``dst``; ``deliver()`` runs on arrival."""
        self.send_to(src, dst, what, _call, deliver)

    def send_to(
        self, src: str, dst: str, what: object, deliver: Callable[[T], object], argument: T
    ) -> None:
        """Carry ``what`` from ``src`` to ``dst``; ``deliver(argument)`` runs on arrival
        (as ``send`` with a closure, without building one per message)."""
        stats, rng, profile = self.stats, self._rng, self.profile
        stats.sent += 1
        if self.blocked and (src, dst) in self.blocked:
            stats.blocked += 1
            self._trace.add(self._queue.now_ms, "blocked", what)
            return
        if rng.random() < profile.drop_p:
            stats.dropped += 1
            self._trace.add(self._queue.now_ms, "drop", what)
            return
        duplicate = rng.random() < profile.dup_p
        parcel = (deliver, argument)
        self._queue.call_after(self._latency_ms(), self._arrive, parcel)
        if duplicate:
            stats.duplicated += 1
            self._queue.call_after(self._latency_ms(), self._arrive, parcel)

    def _arrive(self, parcel: tuple[Callable[[Any], object], object]) -> None:
        self.stats.delivered += 1
        deliver, argument = parcel
        deliver(argument)

    def _latency_ms(self) -> int:
        """The base latency, plus a stall now and then (``draw_int`` is ``randint``)."""
        p, rng = self.profile, self._rng
        latency = draw_int(rng, p.latency_min_ms, p.latency_max_ms)
        if p.slow_p and rng.random() < p.slow_p:
            latency += draw_int(rng, 0, p.slow_ms)
        if latency > BASE_LATENCY_MAX_MS:
            self.stats.delayed += 1
        return latency

    # --- partitions ----------------------------------------------------------------
    def block(self, src: str, dst: str) -> None:
        self.blocked.add((src, dst))

    def heal(self) -> None:
        self.blocked.clear()


__all__ = ["Deliver", "Network", "NetworkProfile", "NetworkStats"]
