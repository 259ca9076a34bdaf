"""The NodeStorage contract (storage/api.py), run against every implementation:
FileNodeStorage on the real disk, FileNodeStorage on MemoryFileSystem, and
MemoryNodeStorage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from resonetics.errors import InvariantViolation
from resonetics.raft.entry import GENESIS, Entry, EntryType, genesis_entry
from resonetics.raft.ready import HardState, Snapshot
from resonetics.storage.api import NodeStorage
from resonetics.storage.fs import MemoryFileSystem, OsFileSystem
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.recovery import snapshot_anchor
from tests.storage.chain import chain, log_of, plain, snapshot_at

#: Returns a storage over the same backing as the one given (None: a new one).
Reopen = Callable[[NodeStorage | None], NodeStorage]


def _os_reopen(tmp_path: Path) -> Reopen:
    def reopen(old: NodeStorage | None) -> NodeStorage:
        if old is not None:
            old.close()
        return FileNodeStorage(OsFileSystem(), str(tmp_path / "n1"))

    return reopen


def _memfs_reopen() -> Reopen:
    fs = MemoryFileSystem()

    def reopen(old: NodeStorage | None) -> NodeStorage:
        if old is not None:
            old.close()
        return FileNodeStorage(fs, "/data/n1")

    return reopen


def _memory_reopen() -> Reopen:
    store = MemoryNodeStorage()

    def reopen(old: NodeStorage | None) -> NodeStorage:
        return store

    return reopen


def _started(s: NodeStorage, term: int = 2) -> NodeStorage:
    """Loaded, with a term saved: a node holds no entry of a term it has not reached,
    and load() refuses a log whose last term is above meta.json's."""
    s.load()
    s.save_hard_state(HardState(term=term), 0)
    return s


@pytest.fixture(params=["file-os", "file-memfs", "memory"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Reopen:
    if request.param == "file-os":
        return _os_reopen(tmp_path)
    if request.param == "file-memfs":
        return _memfs_reopen()
    return _memory_reopen()


def test_fresh_storage_starts_at_genesis_with_term_zero(reopen: Reopen) -> None:
    state = reopen(None).load()
    assert state.anchor == GENESIS
    assert state.entries == []
    assert state.hard_state == HardState()
    assert state.last_applied == 0
    assert state.snapshot is None
    assert state.last_index == 0


def test_synced_appends_survive_reopen(reopen: Reopen) -> None:
    s = _started(reopen(None))
    entries = log_of(10)
    s.append(entries[:4])
    s.append(entries[4:])
    s.sync()
    state = reopen(s).load()
    assert plain(state.entries) == entries
    assert state.last_index == 10


def test_truncate_then_append_replaces_the_suffix(reopen: Reopen) -> None:
    s = _started(reopen(None))
    old = log_of(8, term=1)
    s.append(old)
    s.sync()
    s.truncate_from(5)
    new = chain(old[3], 3, term=2, tag="new")
    s.append(new)
    s.sync()
    state = reopen(s).load()
    assert plain(state.entries) == old[:4] + new


def test_truncate_of_unsynced_appends_drops_them(reopen: Reopen) -> None:
    s = _started(reopen(None))
    entries = log_of(6)
    s.append(entries[:3])
    s.sync()
    s.append(entries[3:])
    s.truncate_from(5)
    s.sync()
    assert plain(reopen(s).load().entries) == entries[:4]


def test_truncate_beyond_the_end_is_a_no_op(reopen: Reopen) -> None:
    s = _started(reopen(None))
    s.append(log_of(3))
    s.truncate_from(10)
    s.sync()
    assert reopen(s).load().last_index == 3


def test_hard_state_survives_reopen(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    s.append(log_of(5))
    s.sync()
    s.save_hard_state(HardState(term=3, vote="n2", commit=4), 2)
    state = reopen(s).load()
    assert state.hard_state == HardState(term=3, vote="n2", commit=4)
    assert state.last_applied == 2


def test_load_clamps_commit_and_last_applied_to_the_log(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    s.append(log_of(3))
    s.sync()
    s.save_hard_state(HardState(term=1, vote=None, commit=9), 9)
    state = reopen(s).load()
    assert state.hard_state.commit == 3
    assert state.last_applied == 3


def test_vote_cannot_change_within_a_term(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    s.save_hard_state(HardState(term=2, vote="n1"), 0)
    with pytest.raises(InvariantViolation):
        s.save_hard_state(HardState(term=2, vote="n3"), 0)
    with pytest.raises(InvariantViolation):
        s.save_hard_state(HardState(term=1, vote=None), 0)
    s.save_hard_state(HardState(term=3, vote="n3"), 0)


def test_append_must_follow_the_last_index(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    with pytest.raises(InvariantViolation):
        s.append(log_of(3)[1:])


def test_truncating_the_anchor_is_refused(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    s.append(log_of(3))
    with pytest.raises(InvariantViolation):
        s.truncate_from(0)


def test_snapshot_inside_the_log_keeps_the_tail(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    entries = log_of(10)
    s.append(entries)
    s.sync()
    s.save_hard_state(HardState(term=1, commit=8), 6)
    s.save_snapshot(snapshot_at(entries[5], b"six"), 6)
    state = reopen(s).load()
    assert state.anchor.type is EntryType.SNAP_DUMMY
    assert (state.anchor.index, state.anchor.hash) == (6, entries[5].hash)
    assert plain(state.entries) == entries[6:]
    assert state.snapshot == snapshot_at(entries[5], b"six")
    assert (state.last_applied, state.hard_state.commit) == (6, 8)


def test_appends_after_a_snapshot_continue_the_chain(reopen: Reopen) -> None:
    s = _started(reopen(None))
    entries = log_of(5)
    s.append(entries)
    s.sync()
    s.save_snapshot(snapshot_at(entries[4]), 5)
    more = chain(entries[4], 3)
    s.append(more)
    s.sync()
    state = reopen(s).load()
    assert plain(state.entries) == more
    assert state.last_index == 8


def test_snapshot_beyond_the_log_discards_it(reopen: Reopen) -> None:
    s = _started(reopen(None))
    s.append(log_of(3))
    s.sync()
    leader_log = log_of(20, term=2)
    s.save_snapshot(snapshot_at(leader_log[14]), 15)
    state = reopen(s).load()
    assert state.anchor.index == 15
    assert state.entries == []
    assert (state.last_applied, state.hard_state.commit) == (15, 15)


def test_snapshot_conflicting_with_the_log_discards_it(reopen: Reopen) -> None:
    s = _started(reopen(None))
    s.append(log_of(10, term=1))
    s.sync()
    leader_log = log_of(10, term=2)
    s.save_snapshot(snapshot_at(leader_log[4]), 5)
    state = reopen(s).load()
    assert state.anchor.hash == leader_log[4].hash
    assert state.entries == []


def test_a_second_snapshot_compacts_further(reopen: Reopen) -> None:
    s = _started(reopen(None))
    entries = log_of(12)
    s.append(entries)
    s.sync()
    s.save_snapshot(snapshot_at(entries[3]), 4)
    s.save_snapshot(snapshot_at(entries[8], b"nine"), 9)
    state = reopen(s).load()
    assert state.anchor.index == 9
    assert plain(state.entries) == entries[9:]
    assert state.snapshot is not None and state.snapshot.data == b"nine"


def test_an_older_snapshot_is_refused(reopen: Reopen) -> None:
    s = reopen(None)
    s.load()
    entries = log_of(8)
    s.append(entries)
    s.sync()
    s.save_snapshot(snapshot_at(entries[5]), 6)
    with pytest.raises(InvariantViolation):
        s.save_snapshot(snapshot_at(entries[2]), 3)


@pytest.mark.parametrize("kind", ["file-os", "file-memfs", "memory"])
def test_storage_given_an_identity_starts_at_its_clusters_genesis(
    kind: str, tmp_path: Path
) -> None:
    cluster = "c" * 32
    identity = NodeIdentity("n1", cluster)
    if kind == "memory":
        store: NodeStorage = MemoryNodeStorage(identity)
    elif kind == "file-os":
        store = FileNodeStorage(OsFileSystem(), str(tmp_path / "n1"), identity)
    else:
        store = FileNodeStorage(MemoryFileSystem(), "/data/n1", identity)
    state = store.load()
    assert state.anchor == genesis_entry(cluster) != GENESIS
    entries = chain(state.anchor, 3)
    store.save_hard_state(HardState(term=1), 0)
    store.append(entries)
    store.sync()
    assert plain(store.load().entries) == entries


def _six_entries_and_a_snapshot_file_at_four(
    reopen: Reopen,
) -> tuple[NodeStorage, list[Entry], Snapshot]:
    """A storage holding 6 committed entries and a snapshot file at index 4, its log
    not yet compacted to it (the first half of ``save_snapshot`` done)."""
    s = reopen(None)
    s.load()
    entries = log_of(6)
    s.append(entries)
    s.sync()
    s.save_hard_state(HardState(term=1, commit=6), 6)
    snap = snapshot_at(entries[3], b"four")
    s.write_snapshot_file(snap)
    return s, entries, snap


def test_the_log_is_written_between_the_snapshot_file_and_the_compaction(reopen: Reopen) -> None:
    """``write_snapshot_file`` may run on a thread of its own while the log is written;
    the compaction afterwards keeps what was appended meanwhile."""
    s, entries, snap = _six_entries_and_a_snapshot_file_at_four(reopen)
    more = chain(entries[-1], 3)
    s.append(more)
    s.sync()
    s.compact_to_snapshot(snap)
    state = reopen(s).load()
    assert (state.anchor.index, state.anchor.hash) == (4, entries[3].hash)
    assert plain(state.entries) == [*entries[4:], *more]
    assert state.snapshot == snap


def test_a_crash_between_the_snapshot_file_and_the_compaction_recovers_the_new_snapshot(
    reopen: Reopen,
) -> None:
    """The log was never compacted to it, but holds its entry: it is kept whole (entries
    retained behind the snapshot) and the state is the snapshot's."""
    s, entries, snap = _six_entries_and_a_snapshot_file_at_four(reopen)
    state = reopen(s).load()
    assert state.snapshot == snap
    assert state.anchor.index == 0
    assert plain(state.entries) == entries
    assert state.last_applied >= 4


def test_entries_retained_behind_a_snapshot_survive_the_compaction_and_a_restart(
    reopen: Reopen,
) -> None:
    """At least the kept entries (3 and 4, behind the snapshot at 4): a file log may keep
    more, until dropping its older lines pays for copying the kept ones."""
    s, entries, snap = _six_entries_and_a_snapshot_file_at_four(reopen)
    keep_from = snapshot_anchor(snapshot_at(entries[1], b"").meta)
    s.compact_to_snapshot(snap, keep_from)
    state = reopen(s).load()
    assert state.snapshot == snap
    assert state.anchor.index <= 2
    assert plain(state.entries) == entries[state.anchor.index :]
    assert state.last_applied >= 4


def test_a_log_that_does_not_hold_the_snapshots_entry_starts_at_the_snapshot(
    reopen: Reopen,
) -> None:
    """An install cut short by a crash: the new snapshot is written, the old log is of
    another history at its index. Nothing of that log is kept."""
    s, entries, _ = _six_entries_and_a_snapshot_file_at_four(reopen)
    other = chain(entries[2], 1, term=2)[0]  # index 4 of another history
    foreign = snapshot_at(other, b"other four")
    s.save_hard_state(HardState(term=2, commit=6), 6)
    s.write_snapshot_file(foreign)
    state = reopen(s).load()
    assert state.snapshot == foreign
    assert (state.anchor.index, state.anchor.hash) == (4, other.hash)
    assert state.entries == []
