"""State that means something in one role only, made when a node takes the role.

Theory of operation
-------------------
A ``RaftNode`` holds exactly one of these at a time (``RaftNode._state``); every
``_become_*`` makes a new one, so nothing a node knew in one role (a leader's
follower progress, its pending reads, a transfer target; a candidate's votes; a
follower's forwarded reads) can be read in the next. Before this, these were
flat fields on the node that each role change reset by hand, and a field
forgotten in the reset would have leaked into the next role.

What is *not* here, on purpose: the term, vote, commit and log (persistent);
the known leader and the election timer (every role reads them: stickiness,
CheckQuorum); the ``read_seq`` clock (``read_index.ReadClock``: it only ever
grows on a node, whichever leadership hands the next value out); a snapshot
being received (a follower keeps receiving across a lost pre-vote round, which
does not change the term, and the leader's stream is still good then).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from resonetics.raft.progress import Progress
from resonetics.raft.read_index import FollowerReads, ReadClock, ReadTracker
from resonetics.raft.types import NodeId


@dataclass(slots=True)
class FollowerState:
    """A follower's (or learner's) own state: the reads it forwarded to its leader."""

    reads: FollowerReads

    @classmethod
    def new(cls, read_ids: Iterator[int]) -> FollowerState:
        return cls(FollowerReads(read_ids))


@dataclass(slots=True)
class CandidateState:
    """A (pre-)candidate's votes in its current round, itself included."""

    votes: dict[NodeId, bool] = field(default_factory=dict)


@dataclass(slots=True)
class LeaderState:
    """One leadership: what the leader knows of each follower, and what it is doing.

    Invariant: ``transfer_target is None`` or it is a voter with a ``progress`` entry
    (checked by ``RaftNode.transfer_leadership`` when set).
    """

    #: Replication progress of every other member (``raft/progress.py``).
    progress: dict[NodeId, Progress]
    #: Reads accepted during this leadership and not yet confirmed (§6.4).
    reads: ReadTracker
    #: Ticks since the last heartbeat round.
    heartbeat_elapsed: int = 0
    #: A leadership transfer in progress (§3.10): no proposals meanwhile.
    transfer_target: NodeId | None = None
    #: Ticks since the transfer started; it aborts after an election timeout.
    transfer_elapsed: int = 0

    @classmethod
    def new(cls, clock: ReadClock) -> LeaderState:
        return cls(progress={}, reads=ReadTracker(clock))


#: What a node holds in its current role.
RoleState = FollowerState | CandidateState | LeaderState

__all__ = ["CandidateState", "FollowerState", "LeaderState", "RoleState"]
