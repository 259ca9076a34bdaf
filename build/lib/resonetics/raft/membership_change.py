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


def next_membership(
    current: Membership, change: ConfigChange, commit_index: Index = 0
) -> Membership:
    """The configuration to append for ``change``; ``ConfigChangeRejected`` if it is invalid.

    ``commit_index`` is the leader's commit index now: a learner added by this change
    must acknowledge entries up to it before it may become a voter.
    """
    if current.joint:
        raise ConfigChangeInProgress(
            "a membership change is still in progress (joint configuration); retry when it ends"
        )
    node = change.node
    if not node:
        raise ConfigChangeRejected("node id must be non-empty")
    addresses = {**current.addresses, **change.addresses}
    clients = {**current.client_addresses, **change.client_addresses}
    if change.kind in (ChangeKind.ADD_VOTER, ChangeKind.ADD_LEARNER):
        # Checked against the merged maps, before this change's own address is written:
        # a young cluster's first CONFIG entries may hold no addresses at all, and the
        # operator-given ones arrive with the change (``change.addresses``).
        refuse_duplicate(current, change, addresses, clients)
    if change.address is not None:
        addresses[node] = change.address
    if change.client_address is not None:
        clients[node] = change.client_address
    if change.kind in (ChangeKind.ADD_VOTER, ChangeKind.ADD_LEARNER):
        changed = _add_learner(current, change, addresses, max(commit_index, 1))
    elif change.kind is ChangeKind.PROMOTE:
        changed = _promote(current, node, addresses)
    else:
        changed = _remove(current, node, addresses)
        clients.pop(node, None)
    return msgspec.structs.replace(changed, client_addresses=clients)


def refuse_duplicate(
    current: Membership,
    change: ConfigChange,
    addresses: dict[NodeId, str],
    clients: dict[NodeId, str],
) -> None:
    """Refuse an add whose id, peer address or client address a member already has.

    A second id on a live node's address would make two "members" of one process:
    the cluster would count a voter that can never answer as itself.
    """
    node = change.node
    if node in current.members():
        raise ConfigChangeRejected(f"{node} is already a member")
    if change.address is None:
        raise ConfigChangeRejected(f"adding {node} needs its address (HOST:PORT)")
    members = current.members()
    for kind, wanted, known in (
        ("address", change.address, addresses),
        ("client address", change.client_address, clients),
    ):
        if wanted is None:
            continue
        for other in sorted(members):
            if known.get(other) == wanted:
                raise ConfigChangeRejected(
                    f"{wanted} is already the {kind} of member {other}; "
                    f"remove {other} first if {node} replaces it"
                )


def _add_learner(
    current: Membership, change: ConfigChange, addresses: dict[NodeId, str], required: Index
) -> Membership:
    node = change.node
    promote = current.promote_when_caught_up
    if change.kind is ChangeKind.ADD_VOTER:
        promote = (*promote, node)
    return Membership(
        voters=current.voters,
        learners=(*current.learners, node),
        addresses=addresses,
        promote_when_caught_up=promote,
        catch_up_index={**current.catch_up_index, node: required},
    )


def _without(mapping: dict[NodeId, Index], node: NodeId) -> dict[NodeId, Index]:
    return {n: i for n, i in mapping.items() if n != node}


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
        catch_up_index=_without(current.catch_up_index, node),
    )


def _remove(current: Membership, node: NodeId, addresses: dict[NodeId, str]) -> Membership:
    addresses.pop(node, None)
    promote = tuple(n for n in current.promote_when_caught_up if n != node)
    catch_up = _without(current.catch_up_index, node)
    if node in current.learners:
        return Membership(
            voters=current.voters,
            learners=tuple(n for n in current.learners if n != node),
            addresses=addresses,
            promote_when_caught_up=promote,
            catch_up_index=catch_up,
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
        catch_up_index=catch_up,
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
        catch_up_index=current.catch_up_index,
    )


def required_index(membership: Membership, learner: NodeId) -> Index:
    """What ``learner`` must have acknowledged to vote: the commit index when it was added.

    A learner from a CONFIG entry written before this was recorded needs at least one
    acknowledged entry (index 1, the GENESIS every log starts with).
    """
    return max(membership.catch_up_index.get(learner, 1), 1)


def caught_up(
    acked_index: Index, required: Index, leader_last_index: Index, lag_entries_max: int
) -> bool:
    """May a learner vote? Only once it has **acknowledged** entries up to ``required`` (the
    leader's commit index when it was added) and is within ``lag_entries_max`` of the
    leader's log.

    ``acked_index`` must be a match index learned from the learner's own successful
    AppendEntries/InstallSnapshot responses (``Progress.match_index`` starts at 0 and
    moves only on an ack), never the leader's guess of where it is. The lag bound alone
    once let a node added at a mistyped, dead address become a voter at once on a young
    cluster (a short log is "within 64 entries" of an empty one): a voter that can never
    vote, shrinking the margin of every majority.
    """
    return acked_index >= max(required, 1) and leader_last_index - acked_index <= lag_entries_max


def not_caught_up_reason(
    membership: Membership, learner: NodeId, acked_index: Index, answered: bool
) -> str:
    """Why ``learner`` is not (yet) a voter, naming its address and both indexes."""
    address = membership.addresses.get(learner, "?")
    need = required_index(membership, learner)
    if acked_index == 0 and not answered:
        head = f"{learner} at {address} has not answered since it was added"
    else:
        head = f"{learner} at {address} has not caught up"
    return (
        f"{head}; it stays a learner (acknowledged index {acked_index}, "
        f"needs {need}: the commit index when it was added)"
    )


def learner_to_promote(
    membership: Membership, match: dict[NodeId, Index], last_index: Index, lag_entries_max: int
) -> NodeId | None:
    """The first learner marked for promotion that has caught up, if any."""
    for node in membership.promote_when_caught_up:
        if node in membership.learners and caught_up(
            match.get(node, 0), required_index(membership, node), last_index, lag_entries_max
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
    "not_caught_up_reason",
    "refuse_duplicate",
    "required_index",
]
