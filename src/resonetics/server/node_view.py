"""What ``admin.py`` and ``status.py`` may see of a running node.

``NodeServer`` imports both modules; they used to name ``NodeServer`` back (for
types only), which made the three an import circle that any new module-level
import could close for real. They now depend on this protocol instead, which
``NodeServer`` satisfies structurally, and on nothing in ``node_server.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections import Counter

    from resonetics.collector import CollectorClock
    from resonetics.runtime.driver import NodeDriver
    from resonetics.server.config import ServerConfig
    from resonetics.server.guard import HandlerGuard
    from resonetics.server.loop_lag import LoopLag
    from resonetics.server.peer_listener import PeerListener
    from resonetics.server.peers import PeerLink


class NodeView(Protocol):
    """The node as the admin ops and the status report see it."""

    config: ServerConfig
    driver: NodeDriver
    #: node id -> peer address from authenticated Hellos (never enters a CONFIG entry).
    learned_addresses: dict[str, str]
    #: What ``admin.sync_links`` last saw (configuration, leader, learned count).
    links_synced_for: tuple[object, str | None, int] | None
    links: dict[str, PeerLink]
    last_contact: dict[str, float]
    peer_listener: PeerListener
    peer_messages_refused: int
    handler_guard: HandlerGuard
    client_closes: Counter[str]
    loop_lag: LoopLag
    collector: CollectorClock

    @property
    def cluster_id(self) -> str: ...

    @property
    def machine_name(self) -> str: ...

    def open_link(self, peer: str, address: str) -> None: ...

    def close_link(self, peer: str) -> None: ...

    def leader_address(self, leader: str | None) -> str | None: ...

    def client_door_status(self) -> dict[str, Any]: ...

    def tls_status(self) -> dict[str, Any] | None: ...


__all__ = ["NodeView"]
