"""The ``status`` admin op: what an operator needs to see about one node."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resonetics.server.node_view import NodeView


def node_status(server: NodeView) -> dict[str, Any]:
    core = server.driver.core
    now = time.monotonic()
    stats = server.driver.stats
    return {
        "node": server.config.node_id,
        "cluster_id": server.cluster_id,
        "machine": server.machine_name,
        "address": server.config.client_listen,
        "peer_address": server.config.peer_listen,
        "role": str(core.role),
        "term": core.term,
        "leader": core.leader_id,
        "leader_addr": server.leader_address(core.leader_id),
        "commit_index": core.commit_index,
        "applied_index": core.applied,
        "last_index": core.last_index,
        "last_hash": core.hash_at(core.last_index),
        "applied_hash": server.driver.machine.last_applied_hash,
        "snapshot": {
            "index": server.driver.snapshots.stats.last_index,
            "bytes": server.driver.snapshots.stats.last_bytes,
            "seconds": round(server.driver.snapshots.stats.last_seconds, 6),
            "taken": server.driver.snapshots.stats.taken,
            "installed": server.driver.snapshots.stats.installed,
            # Of those, read a slice per loop turn before the install (snapshot_reading.py).
            "installed_read": server.driver.snapshots.stats.installed_read,
            "log_first_index": core.anchor.index + 1,
        },
        "voters": list(core.membership.voters),
        "learners": list(core.membership.learners),
        "last_contact_s": {
            peer: round(now - seen, 3) for peer, seen in sorted(server.last_contact.items())
        },
        "peers_connected": {peer: link.connected for peer, link in sorted(server.links.items())},
        "clients": server.client_door_status(),
        "tls": server.tls_status(),
        "peer_auth": {
            "refused_links": dict(server.peer_listener.refused),
            "dropped_messages": dict(server.peer_listener.dropped),
            "peer_messages_on_client_port": server.peer_messages_refused,
            # Our outbound links' failed handshakes (e.g. a peer serving another machine).
            "link_problems": {
                peer: {"failed": link.handshakes_failed, "last": link.last_problem}
                for peer, link in sorted(server.links.items())
                if link.handshakes_failed
            },
        },
        "stats": {
            "fsyncs": stats.fsyncs,
            "entries_persisted": stats.entries_persisted,
            "entries_applied": stats.entries_applied,
            # Of those, applied on the ack that committed them, not by a Ready.
            "entries_applied_on_ack": stats.entries_applied_on_ack,
            "messages_sent": stats.messages_sent,
            "write_seconds": round(stats.write_seconds, 3),
            # Peer messages and snapshots refused at the gate, by reason.
            "refused": dict(sorted(stats.refused.items())),
        },
        "handler_errors": server.handler_guard.errors,
        # Stalls of the event loop near an election timeout (server/loop_lag.py).
        "loop": server.loop_lag.status(),
        # The process's cyclic garbage collections and pauses (resonetics/collector.py).
        "gc": server.collector.status(),
    }


__all__ = ["node_status"]
