"""Which part of the in-memory log the runtime still has to write, and what is durable.

Theory of operation
-------------------
The core's ``RaftLog`` runs ahead of the disk. ``LogWrites`` remembers three
indexes so that ``Ready`` hands out each write exactly once and the leader
knows how much of its own log it may count toward a commit:

* ``unstable_from``: the first index not yet handed out in a Ready's ``entries``;
* ``pending_truncate``: a cut of entries already handed out (so possibly on
  disk), not yet handed out itself as ``Ready.truncate_from``;
* ``durable_index``: the last index of the *current* log that ``advance()``
  confirmed written. A truncation lowers it at once (entries past the cut are
  no longer this log's, whatever the disk holds); an ``advance()`` raises it
  only if the entries it confirms are still in the log (same chain hash) and
  no later cut, still to be written, removes them.

Invariant: durable_index < unstable_from <= last_index + 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from resonetics.errors import invariant
from resonetics.raft.entry import Entry
from resonetics.raft.log import RaftLog
from resonetics.raft.types import Index


class LogWrites:
    __slots__ = ("durable_index", "pending_truncate", "unstable_from")

    def __init__(self, durable_last_index: Index) -> None:
        """A log recovered from disk is durable up to its last index."""
        self.unstable_from: Index = durable_last_index + 1
        self.pending_truncate: Index | None = None
        self.durable_index: Index = durable_last_index

    def has_writes(self, log: RaftLog) -> bool:
        return self.pending_truncate is not None or self.unstable_from <= log.last_index

    def on_truncate(self, index: Index) -> None:
        """The log dropped every entry >= ``index``."""
        if index < self.unstable_from:
            pending = self.pending_truncate
            self.pending_truncate = index if pending is None else min(pending, index)
            self.unstable_from = index
        self.durable_index = min(self.durable_index, index - 1)

    def take(self, log: RaftLog) -> tuple[Index | None, list[Entry]]:
        """Hand out (truncate_from, entries) for a Ready; each write is handed out once."""
        out = (self.pending_truncate, log.entries_from(self.unstable_from))
        self.pending_truncate = None
        self.unstable_from = log.last_index + 1
        return out

    def on_snapshot(self, index: Index, *, kept_suffix: bool) -> None:
        """The log now starts at a snapshot anchor at ``index`` (a follower's install).

        The runtime's ``save_snapshot`` keeps the file's tail only when the file
        holds this log's entry at ``index``, which is certain only up to
        ``durable_index``. Otherwise the file is cut back to the anchor and the
        kept suffix is written again: entries past ``durable_index`` were never
        acknowledged, so losing them in a crash breaks no promise.
        """
        if kept_suffix and self.durable_index >= index:
            self.unstable_from = max(self.unstable_from, index + 1)
            return
        self.pending_truncate = index + 1 if kept_suffix else None
        self.unstable_from = index + 1
        self.durable_index = index

    def on_persisted(self, entries: Sequence[Entry], log: RaftLog) -> None:
        """``advance()``: a Ready's ``entries`` are on disk."""
        if not entries:
            return
        last = entries[-1]
        cut_later = self.pending_truncate is not None and self.pending_truncate <= last.index
        if not cut_later and log.hash_at(last.index) == last.hash:
            self.durable_index = max(self.durable_index, last.index)
        invariant(self.durable_index < self.unstable_from, "durable beyond handed-out writes")


__all__ = ["LogWrites"]
