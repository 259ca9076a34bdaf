"""ReadIndex bookkeeping on a leader (dissertation §6.4).

Theory of operation
-------------------
A read registered with ``read_index(ctx)`` records the leader's commit index
and a fresh ``read_seq``. Every AppendEntries carries the leader's current
``read_seq`` and every response echoes it; once a (joint) majority of voters,
the leader included, has echoed a value >= the read's ``seq``, the leader has
proved it was still the leader after the read arrived, so any state applied up
to the recorded index is linearizable. One heartbeat round therefore confirms
every read registered before it (batching).

A new leader does not know the commit index of its predecessor until an entry
of its own term commits (§6.4 step 1), so reads arriving before its NOOP
commits wait in ``waiting_for_noop`` and are registered when it does.

Leases (§6.4.1): the leader also starts a new ``read_seq`` with every heartbeat
round and remembers the tick at which each was handed out. When a majority has
echoed sequence ``s``, every one of them heard from this leader no earlier than
``tick_of(s)``, and leader stickiness keeps each of them from voting for anyone
else for an election timeout after that. Until ``tick_of(s) + lease_ticks``
(``lease_ticks`` below the election timeout by a clock-drift margin) no other
leader can exist, so a read may be served from local state without a round.
The argument is about messages, not heartbeats: a periodic round that skips a
follower entries went to (``RaftNode._broadcast_heartbeat``) still hands out
``s`` first, and the entries that follow carry it.

Follower reads: a follower forwards the read to the leader as a ``ReadIndex``
message; the leader registers it like its own, under a ``RemoteRead`` handle,
and answers ``ReadIndexResp`` with the index once confirmed. ``FollowerReads``
keeps the follower's side: the reads sent and not yet answered.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from resonetics.raft import quorum
from resonetics.raft.membership import Membership
from resonetics.raft.ready import ReadState
from resonetics.raft.types import Index, NodeId


@dataclass(frozen=True, slots=True)
class PendingRead:
    ctx: object
    index: Index
    seq: int


@dataclass(frozen=True, slots=True)
class RemoteRead:
    """A read a follower forwarded: answered with a message, not a local ReadState."""

    node: NodeId
    read_id: int


#: Sequence numbers whose hand-out tick is remembered (older ones cannot start a lease).
_SEQ_TICKS_MAX = 256


class ReadClock:
    """The ``read_seq`` counter and the tick each value was handed out at.

    It outlives any one leadership (a node object keeps one for its lifetime), so
    ``read_seq`` only ever grows on a node even though the reads waiting on it
    (``ReadTracker``) belong to one leadership and are dropped with it.
    """

    __slots__ = ("seq", "seq_ticks")

    def __init__(self) -> None:
        #: Highest read_seq handed out; only ever grows in one node's lifetime.
        self.seq = 0
        #: read_seq -> the tick it was handed out at (for leases).
        self.seq_ticks: dict[int, int] = {}

    def next_seq(self, now: int) -> int:
        """Start a new round: messages sent from now on carry this sequence number."""
        self.seq += 1
        ticks = self.seq_ticks
        ticks[self.seq] = now
        if len(ticks) > _SEQ_TICKS_MAX:
            # The oldest is the first key: keys are only added here, in increasing
            # order, and a dict keeps insertion order (``min`` walked all 256 of them
            # on every heartbeat).
            del ticks[next(iter(ticks))]
        return self.seq


class ReadTracker:
    """Reads one leadership has accepted and not yet confirmed, oldest first.

    Made fresh when a node becomes leader (``raft/roles.py``), over the node's
    ``ReadClock``: pending reads and echoed sequence numbers never cross from one
    leadership to the next.
    """

    __slots__ = ("_clock", "acked_seq", "pending", "waiting_for_noop")

    def __init__(self, clock: ReadClock | None = None) -> None:
        self._clock = clock if clock is not None else ReadClock()
        self.pending: deque[PendingRead] = deque()
        self.waiting_for_noop: list[object] = []
        #: Highest read_seq each peer has echoed during this leadership.
        self.acked_seq: dict[NodeId, int] = {}

    @property
    def seq(self) -> int:
        """The read_seq that messages sent now carry."""
        return self._clock.seq

    @property
    def seq_ticks(self) -> dict[int, int]:
        return self._clock.seq_ticks

    def next_seq(self, now: int) -> int:
        return self._clock.next_seq(now)

    def register(self, ctx: object, commit_index: Index, now: int = 0) -> None:
        self.pending.append(PendingRead(ctx, commit_index, self.next_seq(now)))

    def echoed_by_quorum(self, self_id: NodeId, membership: Membership) -> int:
        """The newest ``read_seq`` a (joint) majority of voters has echoed, the leader
        counting as having echoed every one it handed out (0 when none has).

        Echoes only grow and a quorum that echoed ``s`` echoed everything before it,
        so this is the commit rule's arithmetic over sequence numbers rather than
        match indexes (``quorum.committed_index``): once per call, however many reads
        wait. Asking "does a quorum confirm this read?" read by read cost a quorum
        tally per pending read on every ack, a fifth of a leader's CPU serving reads
        at 256 in flight (docs/benchmarks.md).
        """
        echoed = dict(self.acked_seq)
        echoed[self_id] = self._clock.seq
        return quorum.committed_index(membership, echoed)

    def lease_start(self, self_id: NodeId, membership: Membership) -> int | None:
        """The tick of the newest round a quorum has echoed (the lease runs from there)."""
        return self.seq_ticks.get(self.echoed_by_quorum(self_id, membership))

    def record_ack(self, node: NodeId, seq: int) -> None:
        if seq > self.acked_seq.get(node, 0):
            self.acked_seq[node] = seq

    def confirmed(self, self_id: NodeId, membership: Membership) -> list[ReadState]:
        """Pop every pending read that a quorum has confirmed, in order (pending reads
        hold increasing ``seq``: each took a fresh one when registered)."""
        pending = self.pending
        if not pending:
            return []
        echoed = self.echoed_by_quorum(self_id, membership)
        out: list[ReadState] = []
        while pending and pending[0].seq <= echoed:
            read = pending.popleft()
            out.append(ReadState(read.ctx, read.index))
        return out

    def drop_all(self) -> list[object]:
        """Leadership is lost: every read not yet confirmed must fail or be retried."""
        dropped = [r.ctx for r in self.pending] + self.waiting_for_noop
        self.pending.clear()
        self.waiting_for_noop = []
        self.acked_seq = {}
        return dropped


class FollowerReads:
    """Reads a follower forwarded to its leader, by ``read_id``, with the tick they left."""

    __slots__ = ("_ids", "sent")

    def __init__(self, ids: Iterator[int] | None = None) -> None:
        #: Where read ids come from: the node's one counter, so an id is never reused
        #: by a later follower term (a late answer cannot match a newer read).
        self._ids = ids if ids is not None else itertools.count(1)
        self.sent: dict[int, tuple[object, int]] = {}

    def add(self, ctx: object, now: int) -> int:
        read_id = next(self._ids)
        self.sent[read_id] = (ctx, now)
        return read_id

    def answer(self, read_id: int) -> object | None:
        entry = self.sent.pop(read_id, None)
        return None if entry is None else entry[0]

    def expire(self, now: int, ticks_max: int) -> list[object]:
        """Reads unanswered for ``ticks_max`` ticks (a lost message): give them up."""
        old = [rid for rid, (_, sent) in self.sent.items() if now - sent >= ticks_max]
        return [self.sent.pop(rid)[0] for rid in old]

    def drop_all(self) -> list[object]:
        dropped = [ctx for ctx, _ in self.sent.values()]
        self.sent.clear()
        return dropped


__all__ = ["FollowerReads", "PendingRead", "ReadClock", "ReadTracker", "RemoteRead"]
