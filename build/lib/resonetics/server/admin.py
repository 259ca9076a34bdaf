"""Membership admin ops and peer links that follow the cluster configuration.

Theory of operation
-------------------
The configuration lives in the log (``raft/membership_change.py``); this module
only carries operator requests to the driver and keeps the node's outbound peer
links in line with whatever configuration the core follows now:

- ``member_add`` / ``member_add_learner`` / ``member_promote`` /
  ``member_remove`` propose a change on the leader and answer once its CONFIG
  entry has committed (``member_add`` answers when the node is a learner; the
  leader promotes it to voter by itself once it has caught up, so a caller that
  wants the voter waits on ``member_list``). ``leader_transfer`` starts a
  TimeoutNow handover and answers at once; it aborts after an election timeout.
- Every proposed change carries the peer and client addresses this node was
  configured with or read from the log, so CONFIG entries hold the whole
  address map and a new or restarted node learns where everyone is from the
  log. An address enters a CONFIG entry only from the operator (the initial
  ``[nodes]``, ``member add``): never from what a peer says of itself.
- ``sync_links`` runs after every flush: it opens a link to each member (and,
  while this node is in no configuration yet, to each node that authenticated
  on the peer listener with a ``Hello`` carrying its address: that is how a
  joining node can answer the leader replicating to it) and closes links to
  nodes that left.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from resonetics.raft.membership_change import ChangeKind, ConfigChange
from resonetics.raft.ready import Role
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.wire import codes

if TYPE_CHECKING:
    from resonetics.server.node_view import NodeView

log = logging.getLogger("resonetics.server.admin")

_CHANGE_OPS: Final[dict[str, ChangeKind]] = {
    "member_add": ChangeKind.ADD_VOTER,
    "member_add_learner": ChangeKind.ADD_LEARNER,
    "member_promote": ChangeKind.PROMOTE,
    "member_remove": ChangeKind.REMOVE,
}
MEMBERSHIP_OPS: Final = frozenset({*_CHANGE_OPS, "member_list", "leader_transfer"})


def dispatch(server: NodeView, op: str, args: dict[str, Any], on_done: OnDone) -> None:
    """Run one membership admin op (already validated by ``wire.client``)."""
    if op == "member_list":
        on_done(Outcome(codes.OK, member_list(server)))
    elif op == "leader_transfer":
        on_done(server.driver.transfer_leadership(str(args["to"])))
    elif _already_added(server, op, args):
        on_done(Outcome(codes.OK, member_list(server)))  # a retried add that had committed
    else:
        node = str(args["node"])
        members = server.driver.membership.members() | {node}
        peers = {n: a for n, a in configured_peer_addresses(server).items() if n in members}
        clients = {n: a for n, a in client_addresses(server).items() if n in members}
        change = ConfigChange(
            _CHANGE_OPS[op],
            node,
            args.get("address"),
            peers,
            client_address=args.get("client_address"),
            client_addresses=clients,
        )
        server.driver.change_membership(change, on_done)


def _already_added(server: NodeView, op: str, args: dict[str, Any]) -> bool:
    """An add for a node the leader already has at that address: a client retry, say OK."""
    m = server.driver.membership
    node = str(args.get("node"))
    return (
        op in ("member_add", "member_add_learner")
        and server.driver.core.role is Role.LEADER
        and node in m.members()
        and m.addresses.get(node) == args.get("address")
    )


def member_list(server: NodeView) -> dict[str, Any]:
    """The configuration this node follows, with the leader's view of progress when leading."""
    core = server.driver.core
    m = core.membership
    match = {}
    for peer in sorted(m.members()):
        pr = core.progress_of(peer)
        if pr is not None:
            match[peer] = pr.match_index
    addresses = client_addresses(server)
    peers = configured_peer_addresses(server)
    return {
        "node": server.config.node_id,
        "term": core.term,
        "leader": core.leader_id,
        "voters": list(m.voters),
        "learners": list(m.learners),
        "voters_outgoing": list(m.voters_outgoing),
        "promote_when_caught_up": list(m.promote_when_caught_up),
        "catch_up_index": dict(sorted(m.catch_up_index.items())),
        "addresses": {n: addresses[n] for n in sorted(m.members()) if n in addresses},
        "peer_addresses": {n: peers[n] for n in sorted(m.members()) if n in peers},
        "last_index": core.last_index,
        "commit_index": core.commit_index,
        "match_index": match,
    }


def configured_peer_addresses(server: NodeView) -> dict[str, str]:
    """Peer addresses from the operator: the node's flags, then the log (newest wins)."""
    return {**server.config.peers, **server.driver.membership.addresses}


def client_addresses(server: NodeView) -> dict[str, str]:
    """Client addresses from the operator: the node's flags, then the log (newest wins)."""
    return {**server.config.clients, **server.driver.membership.client_addresses}


def link_addresses(server: NodeView) -> dict[str, str]:
    """Where to dial each peer: authenticated Hellos only fill in what the operator did not."""
    return {**server.learned_addresses, **configured_peer_addresses(server)}


def wanted_peers(server: NodeView) -> set[str]:
    """Nodes this one must be able to send to now."""
    me = server.config.node_id
    members = server.driver.membership.members()
    wanted = set(members) if me in members else set(members) | set(server.learned_addresses)
    leader = server.driver.core.leader_id
    if leader is not None:
        wanted.add(leader)  # a node outside the configuration still answers its leader
    return wanted - {me}


def sync_links(server: NodeView, *, force: bool = False) -> None:
    """Open links to new members, close links to nodes that left the configuration.

    Cheap when nothing changed (it runs after every flush): the configuration
    object is replaced on every change, so identity says whether to look again.
    """
    key = (server.driver.membership, server.driver.core.leader_id, len(server.learned_addresses))
    if not force and server.links_synced_for is not None:
        last_m, last_leader, last_learned = server.links_synced_for
        if last_m is key[0] and last_leader == key[1] and last_learned == key[2]:
            return
    server.links_synced_for = key
    wanted = wanted_peers(server)
    addresses = link_addresses(server)
    server.driver.addresses.update(client_addresses(server))
    for peer in sorted(wanted - set(server.links)):
        if peer in addresses:
            log.info("opening a link to %s at %s", peer, addresses[peer])
            server.open_link(peer, addresses[peer])
    for peer in sorted(set(server.links) - wanted):
        log.info("closing the link to %s: no longer a member", peer)
        server.close_link(peer)


__all__ = [
    "MEMBERSHIP_OPS",
    "dispatch",
    "client_addresses",
    "configured_peer_addresses",
    "link_addresses",
    "member_list",
    "sync_links",
    "wanted_peers",
]
