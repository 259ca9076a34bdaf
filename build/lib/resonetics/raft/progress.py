"""What a leader knows about one follower's log, and how it may send to it.

Theory of operation (after etcd-io/raft's tracker, with every transition here)
-----------------------------------------------------------------------------
* ``PROBE``: the leader does not know where the follower's log matches. It
  sends one AppendEntries at ``next_index`` and waits for the answer
  (``probe_sent``); a rejection moves ``next_index`` back using the follower's
  conflict hint (dissertation §5.3), a success moves to REPLICATE. A heartbeat
  round clears ``probe_sent`` so that a lost probe is retried.
* ``REPLICATE``: the follower is known to match at ``match_index``; the leader
  pipelines, advancing ``next_index`` optimistically as it sends, with at most
  ``inflight_max`` AppendEntries unacknowledged. Any rejection, or no progress
  for a whole stall window (a lost message), falls back to PROBE.
* ``SNAPSHOT``: the entries the follower needs are compacted away; the leader
  streams its latest snapshot (``snapshot_send``, see ``raft/snapshot.py``) and
  sends no AppendEntries until the follower acknowledges the whole of it; then
  PROBE from just past the snapshot's index.

Invariant: ``match_index < next_index``; ``match_index`` never decreases.
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

from resonetics.errors import invariant
from resonetics.raft.snapshot import SnapshotSend
from resonetics.raft.types import Index


class ProgressState(StrEnum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The last index of each unacknowledged AppendEntries, oldest first, bounded."""

    __slots__ = ("_last_indexes", "capacity")

    def __init__(self, capacity: int) -> None:
        invariant(capacity >= 1, "inflight window must hold at least one message")
        self.capacity = capacity
        self._last_indexes: deque[Index] = deque()

    def __len__(self) -> int:
        return len(self._last_indexes)

    def full(self) -> bool:
        return len(self._last_indexes) >= self.capacity

    def add(self, last_index: Index) -> None:
        invariant(not self.full(), "inflight window overflow")
        self._last_indexes.append(last_index)

    def free_to(self, index: Index) -> None:
        """Forget every message whose entries the follower has now acknowledged."""
        while self._last_indexes and self._last_indexes[0] <= index:
            self._last_indexes.popleft()

    def clear(self) -> None:
        self._last_indexes.clear()


class Progress:
    """One follower's replication state, as its leader sees it."""

    __slots__ = (
        "commit_sent",
        "entries_sent_this_round",
        "heartbeat_owed",
        "inflights",
        "match_index",
        "next_index",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "snapshot_send",
        "stall_ticks",
        "state",
    )

    def __init__(self, next_index: Index, inflight_max: int) -> None:
        self.match_index: Index = 0
        self.next_index: Index = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.recent_active = False
        self.pending_snapshot: Index = 0
        #: The InstallSnapshot stream in progress (SNAPSHOT state only).
        self.snapshot_send: SnapshotSend | None = None
        self.stall_ticks = 0
        #: The leader_commit last sent to this follower (to tell it of a newer one promptly).
        self.commit_sent: Index = 0
        #: Entries went out to this follower since the leader's last periodic heartbeat
        #: round (the round may then skip it: see ``RaftNode._broadcast_heartbeat``).
        self.entries_sent_this_round = False
        #: A round skipped this follower before it heard the current commit index: it
        #: gets a heartbeat of its own at the next tick unless an AppendEntries went first.
        self.heartbeat_owed = False
        self.inflights = Inflights(inflight_max)

    def __repr__(self) -> str:
        return (
            f"Progress({self.state}, match={self.match_index}, next={self.next_index}, "
            f"inflight={len(self.inflights)})"
        )

    # --- transitions ------------------------------------------------------------
    def become_probe(self) -> None:
        """Back to one-at-a-time probing from just past what is known to match."""
        if self.state is ProgressState.SNAPSHOT:
            self.next_index = max(self.match_index + 1, self.pending_snapshot + 1)
        else:
            self.next_index = self.match_index + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next_index = self.match_index + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, snapshot_index: Index, send: SnapshotSend | None = None) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index
        self.snapshot_send = send

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_send = None
        self.stall_ticks = 0
        self.inflights.clear()

    # --- events ------------------------------------------------------------------
    def is_paused(self) -> bool:
        """Must the leader hold further AppendEntries to this follower for now?"""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def on_sent(self, last_sent: Index, n_entries: int) -> None:
        """Record an AppendEntries carrying entries up to ``last_sent``."""
        if self.state is ProgressState.REPLICATE and n_entries:
            self.next_index = last_sent + 1
            self.inflights.add(last_sent)
            self.entries_sent_this_round = True
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def on_ack(self, match_index: Index) -> bool:
        """A successful AppendEntriesResp; True when ``match_index`` advanced."""
        self.recent_active = True
        advanced = match_index > self.match_index
        if advanced:
            self.match_index = match_index
            self.next_index = max(self.next_index, match_index + 1)
            self.inflights.free_to(match_index)
            self.stall_ticks = 0
        if self.state is ProgressState.PROBE:
            if advanced or self.match_index + 1 == self.next_index:
                self.become_replicate()
            self.probe_sent = False
        elif self.state is ProgressState.SNAPSHOT and self.match_index >= self.pending_snapshot:
            self.become_probe()
        invariant(self.match_index < self.next_index, "bad progress %r", self)
        return advanced

    def on_reject(self, hint_next: Index) -> None:
        """A rejection: probe again, moving ``next_index`` back by the follower's hint.

        ``next_index`` strictly decreases per rejection (unless already just past
        ``match_index``), so even a stale or duplicated rejection cannot loop.
        """
        self.recent_active = True
        if self.state is ProgressState.SNAPSHOT:
            return
        old_next = self.next_index
        if self.state is ProgressState.REPLICATE:
            self._reset(ProgressState.PROBE)
        self.next_index = max(self.match_index + 1, min(old_next - 1, hint_next))
        self.probe_sent = False

    def tick_stalled(self, stall_ticks_max: int) -> bool:
        """In REPLICATE with messages in flight but no ack for a window: assume one was lost."""
        if self.state is not ProgressState.REPLICATE or not self.inflights:
            self.stall_ticks = 0
            return False
        self.stall_ticks += 1
        if self.stall_ticks >= stall_ticks_max:
            self.become_probe()
            return True
        return False


__all__ = ["Inflights", "Progress", "ProgressState"]
