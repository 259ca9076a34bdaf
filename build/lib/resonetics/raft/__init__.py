"""raft layer (see DESIGN §2): the consensus rules as a pure, deterministic state machine.

Modules: ``node`` (RaftNode: step/tick/propose/ready/advance), ``log`` (the
in-memory anchored log), ``quorum`` (majority and joint-majority math),
``progress`` (per-follower replication state), ``read_index`` (ReadIndex
bookkeeping), ``replication`` (batch and backtracking helpers), and the value
types in ``types``, ``entry``, ``messages``, ``membership``, ``config``, ``ready``.

Its names are loaded on first use (``__getattr__``), so importing one value module,
as the client does with ``raft.entry``, does not load ``RaftNode`` and everything it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resonetics.lazy import lazy_getattr

if TYPE_CHECKING:
    from resonetics.raft.config import RaftConfig
    from resonetics.raft.node import RaftNode
    from resonetics.raft.ready import HardState, ReadState, Ready, Role, SoftState

_EXPORTS = {
    "RaftConfig": "resonetics.raft.config",
    "RaftNode": "resonetics.raft.node",
    "HardState": "resonetics.raft.ready",
    "ReadState": "resonetics.raft.ready",
    "Ready": "resonetics.raft.ready",
    "Role": "resonetics.raft.ready",
    "SoftState": "resonetics.raft.ready",
}


__getattr__ = lazy_getattr(__name__, _EXPORTS)


__all__ = ["HardState", "RaftConfig", "RaftNode", "ReadState", "Ready", "Role", "SoftState"]
