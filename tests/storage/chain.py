"""Helpers for storage tests: build hash-chained entries and snapshots."""

from __future__ import annotations

from collections.abc import Sequence

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.membership import Membership
from resonetics.raft.packing import unpacked
from resonetics.raft.ready import Snapshot, SnapshotMeta


def chain(after: Entry, count: int, term: int = 1, tag: str = "") -> list[Entry]:
    """``count`` CLIENT_CMD entries linked after ``after``."""
    out: list[Entry] = []
    prev = after
    for _ in range(count):
        index = prev.index + 1
        prev = make_entry(prev.hash, term, index, EntryType.CLIENT_CMD, {"k": f"{tag}{index}"})
        out.append(prev)
    return out


def plain(entries: Sequence[Entry]) -> list[Entry]:
    """``entries`` with packed client data decoded: a file storage loads client
    entries packed (``raft/packing.py``), equal to what was appended but for that."""
    return [unpacked(e) for e in entries]


def log_of(count: int, term: int = 1) -> list[Entry]:
    """A fresh log's entries 1..count (GENESIS is the anchor)."""
    return chain(GENESIS, count, term)


def snapshot_at(entry: Entry, data: bytes = b"state") -> Snapshot:
    meta = SnapshotMeta(
        last_included_index=entry.index,
        last_included_term=entry.term,
        last_included_hash=entry.hash,
        membership=Membership(voters=("n1", "n2", "n3")),
    )
    return Snapshot(meta=meta, data=data)
