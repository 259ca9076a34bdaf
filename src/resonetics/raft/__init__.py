"""raft layer (see DESIGN §2): the consensus rules as a pure, deterministic state machine.

Modules: ``node`` (RaftNode: step/tick/propose/ready/advance), ``log`` (the
in-memory anchored log), ``quorum`` (majority and joint-majority math),
``progress`` (per-follower replication state), ``read_index`` (ReadIndex
bookkeeping), ``replication`` (batch and backtracking helpers), and the value
types in ``types``, ``entry``, ``messages``, ``membership``, ``config``, ``ready``.
"""

from resonetics.raft.config import RaftConfig
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import HardState, ReadState, Ready, Role, SoftState

__all__ = ["HardState", "RaftConfig", "RaftNode", "ReadState", "Ready", "Role", "SoftState"]
