"""Cluster membership as the core sees it (dissertation ch. 4).

A ``Membership`` is a value: the voters, the learners (which receive the log
but never vote or count toward a quorum), and, during a joint-consensus change,
the outgoing voters ``voters_outgoing`` (C_old while the cluster is in
C_old,new). It is stored as the ``data`` of CONFIG entries and in snapshots.

``addresses`` (node id -> peer ``HOST:PORT``) and ``client_addresses`` (node id ->
the ``HOST:PORT`` it serves clients on) travel with the configuration so that
every node, a restarted one and a newly joined one included, learns where to
reach a member from the log itself. Both come only from the operator (the
initial ``[nodes]`` table, ``member add``), never from what a peer says of itself. ``promote_when_caught_up`` lists learners
the leader turns into voters once they have caught up (``member add``); it is
in the log so that a new leader carries the intent on. Both default to empty,
and ``to_data()`` writes them only when non-empty, so CONFIG entries written
before they existed hash and decode exactly as before.
"""

from __future__ import annotations

import msgspec

from resonetics.raft.types import Index, NodeId


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    voters: tuple[NodeId, ...]
    learners: tuple[NodeId, ...] = ()
    #: Non-empty only while a joint-consensus change is in progress (C_old).
    voters_outgoing: tuple[NodeId, ...] = ()
    #: node id -> "HOST:PORT" of the members whose address the cluster was told.
    addresses: dict[NodeId, str] = msgspec.field(default_factory=dict)
    #: Learners to promote to voters once caught up with the leader.
    promote_when_caught_up: tuple[NodeId, ...] = ()
    #: node id -> "HOST:PORT" where the member serves clients (``addresses`` are peer
    #: addresses). NOT_LEADER hints and ``member list`` name these.
    client_addresses: dict[NodeId, str] = msgspec.field(default_factory=dict)
    #: learner -> the leader's commit index when it was added: it may become a voter only
    #: once it has *acknowledged* entries up to there (``membership_change.caught_up``).
    #: In the log so that a new leader holds a learner to the same bar.
    catch_up_index: dict[NodeId, Index] = msgspec.field(default_factory=dict)

    @property
    def joint(self) -> bool:
        return bool(self.voters_outgoing)

    def members(self) -> frozenset[NodeId]:
        """Every node that receives the log: voters (old and new) and learners."""
        if not self.voters_outgoing and not self.learners:  # the common case, no unions
            return frozenset(self.voters)
        return frozenset(self.voters) | frozenset(self.voters_outgoing) | frozenset(self.learners)

    def is_voter(self, node: NodeId) -> bool:
        return node in self.voters or node in self.voters_outgoing

    def to_data(self) -> dict[str, object]:
        """The JSON form stored in CONFIG entries and snapshots."""
        data: dict[str, object] = {
            "voters": list(self.voters),
            "learners": list(self.learners),
            "voters_outgoing": list(self.voters_outgoing),
        }
        if self.addresses:
            data["addresses"] = dict(sorted(self.addresses.items()))
        if self.promote_when_caught_up:
            data["promote_when_caught_up"] = list(self.promote_when_caught_up)
        if self.client_addresses:
            data["client_addresses"] = dict(sorted(self.client_addresses.items()))
        if self.catch_up_index:
            data["catch_up_index"] = dict(sorted(self.catch_up_index.items()))
        return data

    @classmethod
    def from_data(cls, data: object) -> Membership:
        return msgspec.convert(data, type=cls)


__all__ = ["Membership"]
