"""Cluster membership as the core sees it (dissertation ch. 4).

A ``Membership`` is a value: the voters, the learners (which receive the log
but never vote or count toward a quorum), and, during a joint-consensus change,
the outgoing voters ``voters_outgoing`` (C_old while the cluster is in
C_old,new). It is stored as the ``data`` of CONFIG entries and in snapshots.
"""

from __future__ import annotations

import msgspec

from resonetics.raft.types import NodeId


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    voters: tuple[NodeId, ...]
    learners: tuple[NodeId, ...] = ()
    #: Non-empty only while a joint-consensus change is in progress (C_old).
    voters_outgoing: tuple[NodeId, ...] = ()

    @property
    def joint(self) -> bool:
        return bool(self.voters_outgoing)

    def members(self) -> frozenset[NodeId]:
        """Every node that receives the log: voters (old and new) and learners."""
        return frozenset(self.voters) | frozenset(self.voters_outgoing) | frozenset(self.learners)

    def is_voter(self, node: NodeId) -> bool:
        return node in self.voters or node in self.voters_outgoing

    def to_data(self) -> dict[str, list[str]]:
        """The JSON form stored in CONFIG entries and snapshots."""
        return {
            "voters": list(self.voters),
            "learners": list(self.learners),
            "voters_outgoing": list(self.voters_outgoing),
        }

    @classmethod
    def from_data(cls, data: object) -> Membership:
        return msgspec.convert(data, type=cls)


__all__ = ["Membership"]
