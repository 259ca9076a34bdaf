"""``MemoryNodeStorage``: ``NodeStorage`` with no files, for fast core tests.

Everything is durable at once (``sync`` does nothing); the compaction and
clamping rules are the very functions ``FileNodeStorage`` uses
(``storage/recovery.py``), and both pass the same contract tests. For crash
behaviour, run ``FileNodeStorage`` over ``MemoryFileSystem`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from resonetics.errors import invariant
from resonetics.raft.entry import Entry, genesis_entry
from resonetics.raft.ready import HardState, Snapshot
from resonetics.raft.types import Index
from resonetics.storage.api import RecoveredState
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.recovery import (
    check_hard_state_step,
    clamp,
    holds_snapshot_entry,
    kept_after_snapshot,
    snapshot_anchor,
)


class MemoryNodeStorage:
    """Invariant: ``entries[i].index == anchor.index + 1 + i``."""

    def __init__(self, identity: NodeIdentity | None = None) -> None:
        #: As ``FileNodeStorage.identity``: the log starts at this cluster's GENESIS.
        self.identity = identity
        cluster = identity.cluster_id if identity is not None else None
        self._hard_state = HardState()
        self._last_applied: Index = 0
        self._anchor: Entry = genesis_entry(cluster or "")
        self._entries: list[Entry] = []
        self._snapshot: Snapshot | None = None

    def load(self) -> RecoveredState:
        snap_index = self._snapshot.meta.last_included_index if self._snapshot else 0
        anchor, entries = self._anchor, self._entries
        if (
            self._snapshot is not None
            and snap_index > anchor.index
            and not holds_snapshot_entry(anchor, entries, self._snapshot.meta)
        ):
            # Written, but the log does not hold its entry: recover it alone, as
            # FileNodeStorage does (a log that holds it is kept, retained entries).
            entries, anchor = [], snapshot_anchor(self._snapshot.meta)
        last_index = anchor.index + len(entries)
        hard_state, applied = clamp(self._hard_state, self._last_applied, snap_index, last_index)
        return RecoveredState(hard_state, applied, anchor, list(entries), self._snapshot)

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            last = self._anchor.index + len(self._entries)
            invariant(entry.index == last + 1, "append of index %d after %d", entry.index, last)
            self._entries.append(entry)

    def truncate_from(self, index: Index) -> None:
        invariant(index > self._anchor.index, f"truncate_from({index}) would cut the anchor")
        del self._entries[index - self._anchor.index - 1 :]

    def sync(self) -> None:
        """Everything is already durable."""

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None:
        check_hard_state_step(self._hard_state, hard_state)
        self._hard_state = hard_state
        self._last_applied = last_applied

    def save_snapshot(self, snapshot: Snapshot, last_applied: Index) -> None:
        self.write_snapshot_file(snapshot)
        self.compact_to_snapshot(snapshot)

    def write_snapshot_file(self, snapshot: Snapshot) -> None:
        """The snapshot is kept; the log is left as it is (until ``compact_to_snapshot``)."""
        index = snapshot.meta.last_included_index
        old = self._snapshot.meta.last_included_index if self._snapshot else 0
        invariant(index >= old, "snapshot older than the saved one")
        self._snapshot = snapshot

    def prepare_compaction(self, snapshot: Snapshot, keep_from: Entry | None) -> None:
        """Nothing to write ahead: the compaction is a list slice."""

    def compact_to_snapshot(self, snapshot: Snapshot, keep_from: Entry | None = None) -> None:
        invariant(
            snapshot.meta.last_included_index >= self._anchor.index,
            "snapshot older than the log's anchor",
        )
        if keep_from is not None and keep_from.index < snapshot.meta.last_included_index:
            if keep_from.index > self._anchor.index:
                k = keep_from.index - self._anchor.index
                here = self._entries[k - 1]
                invariant(here.hash == keep_from.hash, "kept entries do not join the log")
                self._entries, self._anchor = self._entries[k:], keep_from
            return
        self._entries = kept_after_snapshot(self._anchor, self._entries, snapshot.meta)
        self._anchor = snapshot_anchor(snapshot.meta)

    def close(self) -> None:
        """Nothing to release; the contents stay for the next ``load``."""


__all__ = ["MemoryNodeStorage"]
