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
    #: Ticks a leader may serve lease reads after a quorum echoed a heartbeat round
    #: (0: lease reads off). Must stay below election_ticks by the clock-drift margin:
    #: see ``lease_ticks_for``.
    lease_ticks: int = 0
    #: Uncommitted entries a leader accepts before refusing proposals.
    uncommitted_entries_max: int = limits.UNCOMMITTED_ENTRIES_MAX
    #: A learner marked for promotion becomes a voter once within this many entries.
    promote_lag_entries_max: int = limits.PROMOTE_LAG_ENTRIES_MAX
    #: Committed entries (count, about bytes) one Ready hands out to apply: a long
    #: backlog is applied in slices, with the node's other work in between.
    apply_entries_max: int = limits.APPLY_ENTRIES_PER_READY_MAX
    apply_bytes_max: int = limits.APPLY_BYTES_PER_READY_MAX

    def __post_init__(self) -> None:
        if self.node_id not in self.initial_voters and self.initial_voters:
            # A node may start outside the initial configuration (it is joining);
            # that is legal, nothing to check here.
            pass
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")
        if not 0 <= self.lease_ticks < self.election_ticks:
            raise ValueError("need 0 <= lease_ticks < election_ticks")


#: The largest difference in tick rate between two nodes that lease reads tolerate.
LEASE_CLOCK_DRIFT_MAX = 0.15


def lease_ticks_for(election_ticks: int, drift: float = LEASE_CLOCK_DRIFT_MAX) -> int:
    """A safe lease: a follower refuses other candidates for ``election_ticks`` of *its*
    ticks after hearing from the leader; if its clock runs up to ``drift`` faster, that is
    ``election_ticks * (1 - drift)`` of the leader's ticks, less one for rounding."""
    return max(0, int(election_ticks * (1 - drift)) - 1)


__all__ = ["LEASE_CLOCK_DRIFT_MAX", "RaftConfig", "lease_ticks_for"]
