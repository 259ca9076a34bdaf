"""The contract between a node's durable storage and the runtime that drives it.

One ``NodeStorage`` owns one folder ``<data_dir>/<node_id>/`` holding
``meta.json``, ``log.jsonl`` and ``snapshot.json`` (DESIGN §4). The runtime
calls it in the order a ``Ready`` dictates (see ``raft/ready.py``):

* ``load()`` once at start: recover, verify, clamp, and return everything the
  core and the state machine need. A torn or checksum-failing *last* log line
  is cut; any bad line before it raises ``StorageCorruption`` naming the file,
  line number and index. An unreadable or invalid ``meta.json`` raises
  ``StorageCorruption`` too: restarting at term 0 with no vote could cast a
  second vote in a term, so it is never done silently.
* ``append(entries)`` buffers entries at the end of the log (their indexes
  follow the last one, contiguously); ``truncate_from(index)`` drops every entry
  with index >= ``index`` (by byte offset, not by rewriting the file). Neither is
  durable until ``sync()``, which makes *all* earlier appends and truncations
  durable with one fsync (group commit).
* ``save_hard_state(hs, last_applied)`` writes meta.json atomically (temp file,
  fsync, ``os.replace``, fsync of the folder) and is durable when it returns.
* ``save_snapshot(snapshot, last_applied)`` writes snapshot.json atomically, then
  compacts the log so that its first line is a ``SNAP_DUMMY`` anchor at the
  snapshot's index (carrying its term and chain hash). A crash at any point
  leaves either the old or the new snapshot with a log that joins it.
  It is the two halves below, one after the other.
* ``write_snapshot_file(snapshot)`` is the first half: snapshot.json alone,
  durable when it returns. It touches no file the log's calls touch, and
  changes nothing the other calls read, so it may run on a thread of its own
  while the log's appends and syncs go on (a node taking a snapshot keeps
  acking); ``compact_to_snapshot(snapshot)``, the second half, compacts the log
  to it, in order with the log's calls. Between the two, and after a crash
  between them, ``load()`` recovers the new snapshot with the log it joins.

Every implementation (files on the real disk through ``OsFileSystem``, files on
the simulator's crashable ``MemoryFileSystem``) passes the same contract tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from resonetics.raft.entry import Entry
from resonetics.raft.ready import HardState, Snapshot
from resonetics.raft.types import Index


@dataclass(slots=True)
class RecoveredState:
    """Everything a node finds in its folder at start, already verified and clamped.

    Invariant: snapshot index <= last_applied <= hard_state.commit <= last log index;
    ``anchor.index + len(entries)`` is the last log index; entries are contiguous
    and hash-chained from ``anchor``.
    """

    hard_state: HardState
    last_applied: Index
    #: GENESIS at index 0, or a SNAP_DUMMY at or before the snapshot's last included
    #: index (before it when entries are retained behind the snapshot: the log then
    #: holds the snapshot's entry, and a restart applies only what follows it).
    anchor: Entry
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None

    @property
    def last_index(self) -> Index:
        return self.anchor.index + len(self.entries)


class NodeStorage(Protocol):
    def load(self) -> RecoveredState: ...

    def append(self, entries: Sequence[Entry]) -> None: ...

    def truncate_from(self, index: Index) -> None: ...

    def sync(self) -> None: ...

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None: ...

    def save_snapshot(self, snapshot: Snapshot, last_applied: Index) -> None: ...

    def write_snapshot_file(self, snapshot: Snapshot) -> None: ...

    def prepare_compaction(self, snapshot: Snapshot, keep_from: Entry | None) -> None:
        """Off the disk thread (after ``write_snapshot_file``): prepare what the next
        ``compact_to_snapshot(snapshot, keep_from)`` keeps, so that it copies little."""
        ...

    def compact_to_snapshot(self, snapshot: Snapshot, keep_from: Entry | None = None) -> None:
        """Start the log at the snapshot's index, or at ``keep_from``: a SNAP_DUMMY for
        an entry the log holds before that index, whose successors are retained."""
        ...

    def close(self) -> None: ...


__all__ = ["NodeStorage", "RecoveredState"]
