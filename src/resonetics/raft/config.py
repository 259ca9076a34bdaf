"""Tunables of one Raft core, in ticks and counts (the runtime decides a tick's length)."""

from __future__ import annotations

from dataclasses import dataclass

from resonetics import limits
from resonetics.raft.types import NodeId


@dataclass(frozen=True, slots=True)
class RaftConfig:
    node_id: NodeId
    #: Voters used when neither the log nor a snapshot holds a CONFIG entry.
    initial_voters: tuple[NodeId, ...]
    #: An election timeout is drawn uniformly from [election_ticks, 2*election_ticks).
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    inflight_appends_max: int = limits.INFLIGHT_APPENDS_MAX
    append_entries_max: int = limits.APPEND_ENTRIES_MAX
    append_bytes_max: int = limits.APPEND_BYTES_MAX
    #: Uncommitted entries a leader accepts before refusing proposals.
    uncommitted_entries_max: int = limits.UNCOMMITTED_ENTRIES_MAX
    #: A learner marked for promotion becomes a voter once within this many entries.
    promote_lag_entries_max: int = limits.PROMOTE_LAG_ENTRIES_MAX

    def __post_init__(self) -> None:
        if self.node_id not in self.initial_voters and self.initial_voters:
            # A node may start outside the initial configuration (it is joining);
            # that is legal, nothing to check here.
            pass
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")


__all__ = ["RaftConfig"]
