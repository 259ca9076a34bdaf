"""Majority and joint-majority math (Raft §5.3, dissertation §4.3).

Pure functions over a ``Membership`` and per-node facts. In a joint
configuration (C_old,new) every decision needs a majority of ``voters`` AND a
majority of ``voters_outgoing``; learners never count. The commit rule's term
check lives with the leader (it needs the log); here is only "which index has
a quorum matched".

Checked against a brute-force oracle in tests/raft/test_quorum.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum

from resonetics.raft.membership import Membership
from resonetics.raft.types import Index, NodeId


class VoteResult(StrEnum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(n: int) -> int:
    """Smallest number of nodes that is more than half of ``n``."""
    return n // 2 + 1


def majority_index(voters: Collection[NodeId], match: Mapping[NodeId, Index]) -> Index | None:
    """The largest index matched by a majority of ``voters`` (None when there are none).

    Sort the voters' match indexes descending; the majority-th one is matched by
    at least a majority and no larger index is.
    """
    if not voters:
        return None
    ranked = sorted([match.get(v, 0) for v in voters], reverse=True)
    return ranked[len(ranked) // 2]  # the majority-th: majority(n) - 1 == n // 2


def committed_index(membership: Membership, match: Mapping[NodeId, Index]) -> Index:
    """The largest index matched by a (joint) majority; the leader adds the term check."""
    incoming = majority_index(membership.voters, match)
    if not membership.voters_outgoing:  # not joint: the common case, asked per ack
        return 0 if incoming is None else incoming
    outgoing = majority_index(membership.voters_outgoing, match)
    candidates = [i for i in (incoming, outgoing) if i is not None]
    return min(candidates) if candidates else 0


def _simple_vote(voters: Collection[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    if not voters:
        return VoteResult.WON  # an empty half of a joint config never blocks
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    need = majority(len(voters))
    if granted >= need:
        return VoteResult.WON
    if len(voters) - rejected < need:
        return VoteResult.LOST
    return VoteResult.PENDING


def vote_result(membership: Membership, votes: Mapping[NodeId, bool]) -> VoteResult:
    """Tally an election: WON needs a majority of each half, LOST when either half is lost."""
    results = {
        _simple_vote(membership.voters, votes),
        _simple_vote(membership.voters_outgoing, votes),
    }
    if VoteResult.LOST in results:
        return VoteResult.LOST
    if results == {VoteResult.WON}:
        return VoteResult.WON
    return VoteResult.PENDING


def has_quorum(membership: Membership, nodes: Collection[NodeId]) -> bool:
    """True when ``nodes`` contains a (joint) majority of the voters."""
    votes = {n: True for n in nodes}
    return vote_result(membership, votes) is VoteResult.WON


__all__ = [
    "VoteResult",
    "committed_index",
    "has_quorum",
    "majority",
    "majority_index",
    "vote_result",
]
