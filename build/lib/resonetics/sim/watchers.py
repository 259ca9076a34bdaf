"""Simulated watchers: watch streams served by the shipped hub, checked against the log.

Theory of operation
-------------------
Each simulated node keeps the same ``ChangeHistory`` a server keeps (attached in
``Cluster.start``), and each incarnation of a node gets the shipped ``WatchHub``
(``server/watch.py``) over it. A ``SimWatcher`` subscribes to one node's hub with
``from_index = through + 1`` — the resume rule of ``resonetics.watch`` — and is fed
whenever the watchers poll (every ``POLL_MS`` of virtual time: pump, then progress).
When its node crashes (the incarnation it subscribed to is gone), or the hub ends the
stream, the watcher resumes on another node chosen by its seeded ``random.Random``.
If every node answers ``COMPACTED`` the watcher closes its segment and starts a new one
from the oldest index offered (a legitimate, recorded gap: ``compacted_restarts``).

What is simplified: a watcher reaches a hub directly, not through the simulated network
(the wire format is the hub's own bytes, decoded as a client would). What is checked at
the end of the seed, by ``check/watch_stream.py``: every segment against the committed
changes replayed from the entries the nodes applied (applied means committed; the
monitor keeps the first copy of each), so no gap, duplicate, reorder or wrong hash.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from resonetics.check.watch_stream import check_stream, committed_changes
from resonetics.raft.entry import GENESIS, Entry
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import ANONYMOUS, Identity
from resonetics.server.watch import WatchHub
from resonetics.sim.cluster import Cluster, SimNode
from resonetics.sim.invariants import SimViolation
from resonetics.wire import codes
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.watch import (
    WatchEnd,
    WatchEvent,
    WatchEvents,
    WatchProgress,
    decode_watch_message,
)

#: Virtual ms between polls (pump every hub, then progress notices).
POLL_MS = 20
#: Prefixes watchers follow, by watcher number (the workload's keys are short strings).
PREFIXES = ("", "k")


@dataclass
class Segment:
    """A stretch of a stream with no legitimate gap: changes from ``from_index`` on,
    complete through ``through``."""

    from_index: int
    events: list[WatchEvent] = field(default_factory=list)
    through: int = 0


class _Conn:
    """The watcher's end of a connection: what the hub writes arrives here."""

    transport: Any = None
    #: The simulator has no policy: anonymous under the open one.
    identity: Identity | None = ANONYMOUS

    def __init__(self, watcher: SimWatcher) -> None:
        self._watcher = watcher
        self.closed = False

    def write(self, data: bytes) -> None:
        self._watcher.receive(self, data)

    def is_closing(self) -> bool:
        return self.closed


class _Sender:
    def add(self, writer: Any, data: bytes) -> None:
        writer.write(data)


class SimWatcher:
    """One watcher on ``prefix`` (see the module's theory)."""

    def __init__(self, name: str, prefix: str, rng: random.Random) -> None:
        self.name = name
        self.prefix = prefix
        self._rng = rng
        self.segments: list[Segment] = []
        self.through: int | None = None
        self.resumes = 0
        self.compacted_restarts = 0
        self._node: SimNode | None = None
        self._incarnation = 0
        self._conn: _Conn | None = None
        self._ids = 0

    # --- driven by ``SimWatchers.poll`` ----------------------------------------------
    def poll(self, watchers: SimWatchers) -> None:
        node = self._node
        if node is not None and (not node.up or node.incarnation != self._incarnation):
            self._lost()
        if self._conn is None:
            self._subscribe(watchers)

    def _subscribe(self, watchers: SimWatchers) -> None:
        nodes = [n for n in watchers.cluster.nodes.values() if n.up and n.history is not None]
        self._rng.shuffle(nodes)
        oldest: list[int] = []
        for node in nodes:
            conn = _Conn(self)
            self._ids += 1
            args = {
                "prefix": self.prefix,
                "from_index": None if self.through is None else self.through + 1,
            }
            answers: list[Outcome] = []
            self._conn = conn  # events may arrive during the call
            watchers.hub(node).handle("watch", self._ids, args, conn, answers.append)
            (answer,) = answers
            if answer.ok:
                if self.through is None:
                    self.through = int(answer.result["from_index"]) - 1
                if not self.segments:
                    self.segments.append(Segment(self.through + 1))
                self._node, self._incarnation = node, node.incarnation
                return
            self._conn = None
            if answer.code == codes.COMPACTED:
                oldest.append(int(answer.result["oldest_index"]))
        if nodes and len(oldest) == len(nodes):
            self._restart_at(max(oldest))

    def _restart_at(self, oldest: int) -> None:
        """No node holds the history from ``through + 1``: a recorded, legitimate gap."""
        self.compacted_restarts += 1
        if self.segments:
            self.segments[-1].through = self.through or 0
        self.through = oldest - 1
        self.segments.append(Segment(oldest))

    def _lost(self) -> None:
        if self._conn is not None:
            self._conn.closed = True
        self._conn, self._node = None, None
        self.resumes += 1

    def receive(self, conn: _Conn, data: bytes) -> None:
        if conn is not self._conn:
            return  # a stream this watcher already left
        message = decode_watch_message(decode_envelope(data.rstrip(b"\n")))
        through = self.through or 0
        if isinstance(message, WatchEvents):
            segment = self.segments[-1] if self.segments else None
            fresh = [e for e in message.events if e.index > through]
            if segment is not None:
                segment.events.extend(fresh)
            if message.events:
                self.through = max(through, message.events[-1].index)
        elif isinstance(message, WatchProgress):
            self.through = max(through, message.index)
        elif isinstance(message, WatchEnd):
            self._lost()

    def finish(self) -> None:
        if self.segments:
            self.segments[-1].through = self.through or 0


class SimWatchers:
    """The run's watchers and one hub per node incarnation."""

    def __init__(self, cluster: Cluster, seed: int, count: int) -> None:
        self.cluster = cluster
        self.watchers = [
            SimWatcher(
                f"w{i + 1}", PREFIXES[i % len(PREFIXES)], random.Random(f"{seed}/watcher/{i}")
            )
            for i in range(count)
        ]
        self._hubs: dict[tuple[str, int], WatchHub] = {}
        self._sender = _Sender()

    def hub(self, node: SimNode) -> WatchHub:
        key = (node.node_id, node.incarnation)
        hub = self._hubs.get(key)
        if hub is None:
            hub = self._hubs[key] = WatchHub(node.history, self._sender)
        return hub

    def start(self, at_ms: int, until_ms: int) -> None:
        def poll() -> None:
            self.poll()
            if self.cluster.queue.now_ms + POLL_MS < until_ms:
                self.cluster.queue.after(POLL_MS, poll)

        self.cluster.queue.at(at_ms, poll)

    def poll(self) -> None:
        for watcher in self.watchers:
            watcher.poll(self)
        for (node_id, incarnation), hub in list(self._hubs.items()):
            node = self.cluster.nodes[node_id]
            if node.up and node.incarnation == incarnation:
                hub.pump()
                hub.progress()
            else:
                del self._hubs[(node_id, incarnation)]

    def check(self, applied: dict[int, Entry]) -> dict[str, int]:
        """Every segment of every stream against the committed changes; counters back."""
        for watcher in self.watchers:
            watcher.poll(self)
        self.poll()
        contiguous = 0
        while contiguous + 1 in applied:
            contiguous += 1
        entries = [applied[i] for i in range(1, contiguous + 1)]
        try:
            committed = committed_changes([GENESIS, *entries])
        except ValueError as exc:
            raise SimViolation(f"watch check: the applied entries do not chain: {exc}") from None
        events = 0
        for watcher in self.watchers:
            watcher.finish()
            for segment in watcher.segments:
                through = min(segment.through, contiguous)
                events += len(segment.events)
                shown = [e for e in segment.events if e.index <= through]
                report = check_stream(
                    shown,
                    committed,
                    prefix=watcher.prefix,
                    from_index=segment.from_index,
                    through=through,
                )
                if not report.ok:
                    raise SimViolation(
                        f"watch stream of {watcher.name} (prefix {watcher.prefix!r}, from "
                        f"{segment.from_index} through {through}): "
                        + "; ".join(report.problems[:3])
                    )
        return {
            "watch_events": events,
            "watch_resumes": sum(w.resumes for w in self.watchers),
            "watch_compacted_restarts": sum(w.compacted_restarts for w in self.watchers),
        }


__all__ = ["SimWatcher", "SimWatchers"]
