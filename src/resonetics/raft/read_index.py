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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

from resonetics.raft.ready import ReadState
from resonetics.raft.types import Index, NodeId


@dataclass(frozen=True, slots=True)
class PendingRead:
    ctx: object
    index: Index
    seq: int


class ReadTracker:
    """Reads a leader has accepted and not yet confirmed, oldest first."""

    __slots__ = ("acked_seq", "pending", "seq", "waiting_for_noop")

    def __init__(self) -> None:
        #: Highest read_seq handed out; only ever grows in one node's lifetime.
        self.seq = 0
        self.pending: deque[PendingRead] = deque()
        self.waiting_for_noop: list[object] = []
        #: Highest read_seq each peer has echoed during this leadership.
        self.acked_seq: dict[NodeId, int] = {}

    def register(self, ctx: object, commit_index: Index) -> None:
        self.seq += 1
        self.pending.append(PendingRead(ctx, commit_index, self.seq))

    def record_ack(self, node: NodeId, seq: int) -> None:
        if seq > self.acked_seq.get(node, 0):
            self.acked_seq[node] = seq

    def confirmed(
        self, self_id: NodeId, has_quorum: Callable[[Collection[NodeId]], bool]
    ) -> list[ReadState]:
        """Pop every pending read that a quorum has confirmed, in order."""
        out: list[ReadState] = []
        while self.pending:
            read = self.pending[0]
            acked = {n for n, s in self.acked_seq.items() if s >= read.seq} | {self_id}
            if not has_quorum(acked):
                break
            self.pending.popleft()
            out.append(ReadState(read.ctx, read.index))
        return out

    def drop_all(self) -> list[object]:
        """Leadership is lost: every read not yet confirmed must fail or be retried."""
        dropped = [r.ctx for r in self.pending] + self.waiting_for_noop
        self.pending.clear()
        self.waiting_for_noop = []
        self.acked_seq = {}
        return dropped


__all__ = ["PendingRead", "ReadTracker"]
