"""A tiny in-memory cluster for scenario tests of the pure core.

``Network`` owns a set of ``RaftNode``s and plays the runtime's part: it takes
each node's ``Ready``, persists it "instantly" (a per-node ``Disk``), queues
its messages, applies committed entries to a list, and calls ``advance``.
Tests decide what is delivered: ``deliver()`` everything, or filter through
partitions, dropped links and a ``drop`` predicate. ``restart(node)`` rebuilds
a node from its disk, exactly as a crash and recovery would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.messages import AppendEntries, Message
from resonetics.raft.node import RaftNode
from resonetics.raft.packing import unpacked
from resonetics.raft.ready import HardState, ReadState, Ready, Role
from resonetics.raft.types import Index, NodeId


@dataclass
class Disk:
    """What survives a crash: hard state, the log, and the applied entries."""

    hard_state: HardState = field(default_factory=HardState)
    entries: list[Entry] = field(default_factory=list)
    applied: list[Entry] = field(default_factory=list)

    def write(self, rd: Ready) -> None:
        if rd.truncate_from is not None:
            del self.entries[rd.truncate_from - 1 :]
        if rd.entries:
            first = rd.entries[0].index
            assert first == len(self.entries) + 1, (first, len(self.entries))
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            self.hard_state = rd.hard_state


class Network:
    def __init__(
        self,
        ids: Iterable[NodeId] = ("n1", "n2", "n3"),
        *,
        seed: int = 1,
        pre_vote: bool = True,
        check_quorum: bool = True,
        **config: Any,
    ) -> None:
        self.ids = list(ids)
        self.seed = seed
        self.config_kwargs: dict[str, Any] = {
            "pre_vote": pre_vote,
            "check_quorum": check_quorum,
            **config,
        }
        self.disks: dict[NodeId, Disk] = {i: Disk() for i in self.ids}
        self.nodes: dict[NodeId, RaftNode] = {i: self._boot(i) for i in self.ids}
        self.queue: list[Message] = []
        self.cut: set[tuple[NodeId, NodeId]] = set()
        self.down: set[NodeId] = set()
        self.drop: Callable[[Message], bool] = lambda m: False
        self.reads: dict[NodeId, list[ReadState]] = {i: [] for i in self.ids}
        self.dropped_reads: dict[NodeId, list[object]] = {i: [] for i in self.ids}
        self.sent: list[Message] = []
        #: Hook for checkers: called after every Ready is handled.
        self.on_ready: Callable[[NodeId, Ready], None] = lambda n, r: None
        self._restarts = 0

    def config(self, node: NodeId) -> RaftConfig:
        return RaftConfig(node_id=node, initial_voters=tuple(self.ids), **self.config_kwargs)

    def _boot(self, node: NodeId) -> RaftNode:
        disk = self.disks[node]
        rng = random.Random(f"{self.seed}/{node}/{len(disk.entries)}/{disk.hard_state}")
        return RaftNode(
            self.config(node),
            rng,
            hard_state=disk.hard_state,
            anchor=GENESIS,
            entries=list(disk.entries),
            applied=len(disk.applied),
        )

    # --- faults ---------------------------------------------------------------------
    def isolate(self, node: NodeId) -> None:
        self.partition([node], [i for i in self.ids if i != node])

    def partition(self, *groups: Iterable[NodeId]) -> None:
        """Cut every link between different groups."""
        gs = [set(g) for g in groups]
        for a in self.ids:
            for b in self.ids:
                if a != b and not any(a in g and b in g for g in gs):
                    self.cut.add((a, b))

    def heal(self) -> None:
        self.cut.clear()

    def restart(self, node: NodeId) -> None:
        """Crash ``node`` (losing nothing that was persisted) and start it again."""
        self.queue = [m for m in self.queue if m.dst != node]
        self.nodes[node] = self._boot(node)

    def install(self, node: NodeId, entries: list[Entry], hard_state: HardState) -> None:
        """Give ``node`` this durable state (nothing applied yet) and restart it."""
        self.disks[node] = Disk(hard_state=hard_state, entries=list(entries))
        self.restart(node)

    def expire_leases(self) -> None:
        """Let every node's memory of a leader lapse, without anyone winning an election.

        Nodes are cut off from each other while they tick an election timeout, so
        with PreVote a timed-out node only becomes a pre-candidate (no term change).
        """
        saved = set(self.cut)
        self.partition(*[[i] for i in self.ids])
        ticks = self.config(self.ids[0]).election_ticks
        self.tick(times=ticks)
        self.queue.clear()
        self.cut = saved

    # --- driving ---------------------------------------------------------------------
    def process(self, node: NodeId) -> Ready | None:
        """Handle one Ready of ``node`` like the runtime: persist, send, apply, advance."""
        n = self.nodes[node]
        if not n.has_ready():
            return None
        rd = n.ready()
        self.disks[node].write(rd)
        for m in rd.messages:
            self.sent.append(m)
            if (m.src, m.dst) not in self.cut and m.dst not in self.down:
                self.queue.append(m)
        self.disks[node].applied.extend(rd.committed_entries)
        self.reads[node].extend(rd.read_states)
        self.dropped_reads[node].extend(rd.dropped_reads)
        n.advance(rd)
        self.on_ready(node, rd)
        return rd

    def process_all(self) -> None:
        progress = True
        while progress:
            progress = False
            for i in self.ids:
                if i not in self.down and self.process(i) is not None:
                    progress = True

    def deliver_one(self, msg: Message) -> None:
        if (msg.src, msg.dst) in self.cut or msg.dst in self.down or self.drop(msg):
            return
        self.nodes[msg.dst].step(msg)
        self.process(msg.dst)

    def deliver(self, rounds: int = 1000) -> int:
        """Deliver queued messages (and what they cause) until quiet; returns rounds used."""
        self.process_all()
        for r in range(rounds):
            if not self.queue:
                return r
            batch, self.queue = self.queue, []
            for m in batch:
                self.deliver_one(m)
            self.process_all()
        raise AssertionError("network did not quiesce")

    def tick(self, node: NodeId | None = None, times: int = 1) -> None:
        targets = [node] if node else [i for i in self.ids if i not in self.down]
        for _ in range(times):
            for i in targets:
                self.nodes[i].tick()
                self.process(i)

    def tick_and_deliver(self, times: int) -> None:
        for _ in range(times):
            self.tick()
            self.deliver()

    def elect(self, node: NodeId) -> RaftNode:
        self.nodes[node].campaign()
        self.deliver()
        assert self.nodes[node].role is Role.LEADER, self.nodes[node].role
        return self.nodes[node]

    def propose(self, node: NodeId, data: Any) -> Index:
        index = self.nodes[node].propose(data)
        self.process(node)
        return index

    # --- views ----------------------------------------------------------------------
    def leaders(self) -> list[RaftNode]:
        return [n for n in self.nodes.values() if n.role is Role.LEADER]

    def applied_data(self, node: NodeId) -> list[Any]:
        """The data of what ``node`` applied, packed entries decoded (``raft/packing.py``)."""
        return [e.data for e in map(unpacked, self.disks[node].applied) if e.data is not None]


def append_entries(
    prev: Entry,
    entries: list[Entry] | None = None,
    *,
    src: NodeId = "n1",
    dst: NodeId = "n2",
    term: int = 1,
    leader_commit: Index = 0,
) -> AppendEntries:
    """An AppendEntries from leader ``src`` carrying ``entries`` after ``prev`` (none: a
    heartbeat)."""
    return AppendEntries(
        src=src,
        dst=dst,
        term=term,
        leader_id=src,
        prev_log_index=prev.index,
        prev_log_term=prev.term,
        prev_log_hash=prev.hash,
        entries=entries or [],
        leader_commit=leader_commit,
    )


def extend_log(base: list[Entry], terms: Iterable[int], data: Any = None) -> list[Entry]:
    """``base`` followed by one linked CLIENT_CMD entry per term in ``terms``."""
    out = list(base)
    prev = out[-1] if out else GENESIS
    for t in terms:
        prev = make_entry(prev.hash, t, prev.index + 1, EntryType.CLIENT_CMD, data)
        out.append(prev)
    return out


__all__ = ["Disk", "Network", "extend_log"]
