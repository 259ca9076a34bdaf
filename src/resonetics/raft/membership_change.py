"""Configuration changes by joint consensus (Raft §6, dissertation §4.3): the pure rules.

Theory of operation
-------------------
A change that alters the voters never jumps from C_old to C_new directly: the
leader first appends C_old,new (``voters`` = C_new, ``voters_outgoing`` =
C_old), during which every decision, commits and elections alike, needs a
majority of both (``quorum.py``). Once that entry commits, the leader appends
C_new (``leave_joint``). A change that touches only learners (adding one)
cannot shift any majority, so it is a single entry.

Only one change may be in progress: the leader refuses a new one while its log
holds an uncommitted CONFIG entry or while the configuration is still joint.
That keeps at most two configurations in play at any time, which is what makes
the joint majorities overlap every majority that could decide meanwhile.

This module only computes the next configuration and says no, with
``ConfigChangeRejected`` naming the reason; ``RaftNode`` decides *when*.
Rejected alternative: single-server changes without a joint phase (dissertation
§4.2) are simpler, but unsafe across leader changes without extra care (the
2015 raft-dev "single-server change bug"); the joint path handles every change
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from resonetics.errors import ConfigChangeInProgress, ConfigChangeRejected
from resonetics.raft.membership import Membership
from resonetics.raft.types import Index, NodeId


class ChangeKind(StrEnum):
    """What an operator asks for (``resonetics member ...``)."""

    #: Add as a learner, promote to voter automatically once caught up.
    ADD_VOTER = "add_voter"
    #: Add as a learner that stays a learner.
    ADD_LEARNER = "add_learner"
    #: Turn an existing learner into a voter (joint consensus).
    PROMOTE = "promote"
    #: Remove a voter (joint consensus) or a learner.
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One requested change; ``addresses`` adds or refreshes known member addresses.

    ``address`` is the node's peer address, ``client_address`` where it serves
    clients (optional: without it, hints name the node but no address).
    """

    kind: ChangeKind
    node: NodeId
    address: str | None = None
    addresses: dict[NodeId, str] = field(default_factory=dict)
    client_address: str | None = None
    client_addresses: dict[NodeId, str] = field(default_factory=dict)


def next_membership(current: Membership, change: ConfigChange) -> Membership:
    """The configuration to append for ``change``; ``ConfigChangeRejected`` if it is invalid."""
    if current.joint:
        raise ConfigChangeInProgress(
            "a membership change is still in progress (joint configuration); retry when it ends"
        )
    node = change.node
    if not node:
        raise ConfigChangeRejected("node id must be non-empty")
    addresses = {**current.addresses, **change.addresses}
    if change.address is not None:
        addresses[node] = change.address
    clients = {**current.client_addresses, **change.client_addresses}
    if change.client_address is not None:
        clients[node] = change.client_address
    if change.kind in (ChangeKind.ADD_VOTER, ChangeKind.ADD_LEARNER):
        changed = _add_learner(current, change, addresses)
    elif change.kind is ChangeKind.PROMOTE:
        changed = _promote(current, node, addresses)
    else:
        changed = _remove(current, node, addresses)
        clients.pop(node, None)
    return msgspec.structs.replace(changed, client_addresses=clients)


def _add_learner(
    current: Membership, change: ConfigChange, addresses: dict[NodeId, str]
) -> Membership:
    node = change.node
    if node in current.members():
        raise ConfigChangeRejected(f"{node} is already a member")
    if change.address is None:
        raise ConfigChangeRejected(f"adding {node} needs its address (HOST:PORT)")
    for other, address in current.addresses.items():
        if address == change.address and other in current.members():
            raise ConfigChangeRejected(
                f"{change.address} is already the address of member {other}; "
                f"remove {other} first if {node} replaces it"
            )
    promote = current.promote_when_caught_up
    if change.kind is ChangeKind.ADD_VOTER:
        promote = (*promote, node)
    return Membership(
        voters=current.voters,
        learners=(*current.learners, node),
        addresses=addresses,
        promote_when_caught_up=promote,
    )


def _promote(current: Membership, node: NodeId, addresses: dict[NodeId, str]) -> Membership:
    if node in current.voters:
        raise ConfigChangeRejected(f"{node} is already a voter")
    if node not in current.learners:
        raise ConfigChangeRejected(f"{node} is not a member; add it as a learner first")
    return Membership(
        voters=(*current.voters, node),
        learners=tuple(n for n in current.learners if n != node),
        voters_outgoing=current.voters,
        addresses=addresses,
        promote_when_caught_up=tuple(n for n in current.promote_when_caught_up if n != node),
    )


def _remove(current: Membership, node: NodeId, addresses: dict[NodeId, str]) -> Membership:
    addresses.pop(node, None)
    promote = tuple(n for n in current.promote_when_caught_up if n != node)
    if node in current.learners:
        return Membership(
            voters=current.voters,
            learners=tuple(n for n in current.learners if n != node),
            addresses=addresses,
            promote_when_caught_up=promote,
        )
    if node not in current.voters:
        raise ConfigChangeRejected(f"{node} is not a member")
    if len(current.voters) == 1:
        raise ConfigChangeRejected(f"cannot remove {node}: it is the last voter")
    return Membership(
        voters=tuple(n for n in current.voters if n != node),
        learners=current.learners,
        voters_outgoing=current.voters,
        addresses=addresses,
        promote_when_caught_up=promote,
    )


def leave_joint(current: Membership) -> Membership:
    """C_new from C_old,new: the outgoing voters stop counting."""
    assert current.joint, "leave_joint on a non-joint configuration"
    return Membership(
        voters=current.voters,
        learners=current.learners,
        addresses=current.addresses,
        promote_when_caught_up=current.promote_when_caught_up,
        client_addresses=current.client_addresses,
    )


def caught_up(match_index: Index, leader_last_index: Index, lag_entries_max: int) -> bool:
    """A learner is ready to vote once it is within ``lag_entries_max`` of the leader's log
    **and has acknowledged at least one entry**: on a young cluster (a short log) a node
    that never answered, say one added at a mistyped address, would otherwise count as
    caught up and become a voter that can never vote, shrinking the margin of every
    majority."""
    return match_index > 0 and leader_last_index - match_index <= lag_entries_max


def learner_to_promote(
    membership: Membership, match: dict[NodeId, Index], last_index: Index, lag_entries_max: int
) -> NodeId | None:
    """The first learner marked for promotion that has caught up, if any."""
    for node in membership.promote_when_caught_up:
        if node in membership.learners and caught_up(
            match.get(node, 0), last_index, lag_entries_max
        ):
            return node
    return None


__all__ = [
    "ChangeKind",
    "ConfigChange",
    "caught_up",
    "leave_joint",
    "learner_to_promote",
    "next_membership",
]
