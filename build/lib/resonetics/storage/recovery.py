"""Pure rules shared by every ``NodeStorage``: how a snapshot joins a log, and
the clamps applied at load (DESIGN §4). No I/O here, so the file-backed and the
in-memory storage cannot drift apart.
"""

from __future__ import annotations

from resonetics.errors import invariant
from resonetics.raft.entry import Entry, snap_dummy
from resonetics.raft.ready import HardState, SnapshotMeta
from resonetics.raft.types import Index


def snapshot_anchor(meta: SnapshotMeta) -> Entry:
    """The SNAP_DUMMY line a log compacted at ``meta`` starts with."""
    return snap_dummy(meta.last_included_index, meta.last_included_term, meta.last_included_hash)


def anchor_matches(anchor: Entry, meta: SnapshotMeta) -> bool:
    return (
        anchor.index == meta.last_included_index
        and anchor.term == meta.last_included_term
        and anchor.hash == meta.last_included_hash
    )


def holds_snapshot_entry(anchor: Entry, entries: list[Entry], meta: SnapshotMeta) -> bool:
    """Whether the log (``anchor``, ``entries``) holds the snapshot's last included entry,
    same term and hash: then every entry of it is one the snapshot's history has, and
    those behind the snapshot's index may be kept (retained for catch-up)."""
    k = meta.last_included_index - anchor.index
    if k < 0 or k > len(entries):
        return False
    here = anchor if k == 0 else entries[k - 1]
    return here.hash == meta.last_included_hash and here.term == meta.last_included_term


def kept_after_snapshot(anchor: Entry, entries: list[Entry], meta: SnapshotMeta) -> list[Entry]:
    """The entries that survive compaction at ``meta`` (Raft §7, Figure 13 step 6):
    the tail after the snapshot's index if the log holds the snapshot's last
    entry (same hash), else nothing."""
    k = meta.last_included_index - anchor.index
    invariant(k >= 0, "snapshot older than the log's anchor")
    return list(entries[k:]) if holds_snapshot_entry(anchor, entries, meta) else []


def clamp(
    hard_state: HardState, last_applied: Index, snapshot_index: Index, last_index: Index
) -> tuple[HardState, Index]:
    """Enforce snapshot index <= last_applied <= commit <= last log index.

    ``commit`` and ``last_applied`` on disk are lower bounds refreshed lazily;
    the snapshot proves everything up to its index was committed and applied.
    """
    invariant(snapshot_index <= last_index, "snapshot beyond the log's end")
    commit = max(snapshot_index, min(hard_state.commit, last_index))
    applied = max(snapshot_index, min(last_applied, commit))
    return HardState(term=hard_state.term, vote=hard_state.vote, commit=commit), applied


def check_hard_state_step(old: HardState, new: HardState) -> None:
    """A term never goes back and a vote never changes within a term (Raft §5.2)."""
    invariant(new.term >= old.term, f"term going back from {old.term} to {new.term}")
    if new.term == old.term and old.vote is not None:
        invariant(
            new.vote == old.vote, f"vote changing from {old.vote} to {new.vote} in {new.term}"
        )


__all__ = [
    "anchor_matches",
    "check_hard_state_step",
    "clamp",
    "holds_snapshot_entry",
    "kept_after_snapshot",
    "snapshot_anchor",
]
