"""FileNodeStorage recovery: what load() repairs, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from resonetics.errors import InvariantViolation, StorageCorruption
from resonetics.raft.entry import GENESIS, EntryType
from resonetics.raft.ready import HardState
from resonetics.storage.fs import (
    ALLOCATE_AHEAD_BYTES,
    MemoryFileSystem,
    OsFileSystem,
    atomic_write,
)
from resonetics.storage.log_file import encode_line
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.recovery import snapshot_anchor
from resonetics.storage.snapshot_file import encode_snapshot
from tests.storage.chain import chain, log_of, plain, snapshot_at

DIR = "/data/n1"
META = DIR + "/meta.json"
LOG = DIR + "/log.jsonl"
SNAP = DIR + "/snapshot.json"


def _node_with(entries: int, term: int = 2) -> MemoryFileSystem:
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_hard_state(HardState(term=term, vote="n2", commit=entries), entries)
    s.append(log_of(entries))
    s.sync()
    return fs


@pytest.mark.parametrize("content", [b"", b"{", b"not json", b'{"format": 1}', b"\x00\x00"])
def test_unreadable_meta_refuses_to_start_instead_of_resetting_term(content: bytes) -> None:
    fs = _node_with(3)
    atomic_write(fs, META, content)
    with pytest.raises(StorageCorruption) as info:
        FileNodeStorage(fs, DIR).load()
    assert info.value.path == META


def test_meta_of_an_unknown_format_or_with_negative_values_is_refused() -> None:
    for doc in (
        b'{"format":2,"current_term":1,"voted_for":null,"commit_index":0,"last_applied":0}',
        b'{"format":1,"current_term":-1,"voted_for":null,"commit_index":0,"last_applied":0}',
        b'{"format":1,"current_term":"1","voted_for":null,"commit_index":0,"last_applied":0}',
    ):
        fs = _node_with(2)
        atomic_write(fs, META, doc)
        with pytest.raises(StorageCorruption):
            FileNodeStorage(fs, DIR).load()


def test_missing_meta_beside_a_log_with_entries_is_corruption() -> None:
    fs = _node_with(3)
    fs.remove(META)
    with pytest.raises(StorageCorruption, match=r"meta\.json is missing"):
        FileNodeStorage(fs, DIR).load()


def test_missing_meta_beside_a_genesis_only_log_is_a_fresh_node() -> None:
    fs = MemoryFileSystem()
    fs.mkdir(DIR)
    atomic_write(fs, LOG, encode_line(GENESIS))
    state = FileNodeStorage(fs, DIR).load()
    assert state.hard_state == HardState() and state.entries == []
    assert fs.exists(META)


def test_missing_log_beside_meta_is_corruption() -> None:
    fs = _node_with(3)
    fs.remove(LOG)
    with pytest.raises(StorageCorruption, match=r"log\.jsonl"):
        FileNodeStorage(fs, DIR).load()


def test_a_torn_tail_is_cut_from_the_file_and_appends_go_on() -> None:
    fs = _node_with(4)
    good = fs.read(LOG).rstrip(b"\0")  # the lines, without the zeros allocated after them
    fs.write_at(LOG, len(good), encode_line(log_of(5)[4])[:-9])
    s = FileNodeStorage(fs, DIR)
    state = s.load()
    assert state.last_index == 4
    assert s.cut_tail is not None
    assert fs.read(LOG) == good
    s.append(log_of(5)[4:])
    s.sync()
    assert FileNodeStorage(fs, DIR).load().last_index == 5


def test_a_bad_line_in_the_middle_refuses_to_start_and_names_it() -> None:
    fs = _node_with(6)
    data = bytearray(fs.read(LOG))
    offset = len(b"".join(encode_line(e) for e in [GENESIS, *log_of(2)]))
    data[offset + 20] ^= 0x04
    atomic_write(fs, LOG, bytes(data))
    with pytest.raises(StorageCorruption) as info:
        FileNodeStorage(fs, DIR).load()
    assert (info.value.path, info.value.line, info.value.index) == (LOG, 4, 3)
    assert fs.read(LOG) == bytes(data), "nothing was cut"


def test_a_snapshot_failing_its_checksum_refuses_to_start() -> None:
    fs = _node_with(6)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_snapshot(snapshot_at(log_of(6)[3]), 4)
    data = bytearray(fs.read(SNAP))
    data[40] ^= 0x01
    atomic_write(fs, SNAP, bytes(data))
    with pytest.raises(StorageCorruption, match="snapshot"):
        FileNodeStorage(fs, DIR).load()


def test_a_missing_snapshot_beside_a_compacted_log_is_corruption() -> None:
    fs = _node_with(6)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_snapshot(snapshot_at(log_of(6)[3]), 4)
    fs.remove(SNAP)
    with pytest.raises(StorageCorruption, match="snapshot anchor"):
        FileNodeStorage(fs, DIR).load()


def test_a_new_snapshot_beside_the_old_log_that_holds_its_entry_keeps_the_log() -> None:
    """A compaction a crash cut short: the log is kept as it is (entries retained behind
    the snapshot), not rewritten at start; the next compaction drops what it should."""
    entries = log_of(8)
    fs = _node_with(8)
    before = fs.read(LOG)
    atomic_write(fs, SNAP, encode_snapshot(snapshot_at(entries[4])))
    state = FileNodeStorage(fs, DIR).load()
    assert (state.anchor.type, state.anchor.index) == (EntryType.GENESIS, 0)
    assert plain(state.entries) == entries
    assert state.snapshot is not None and state.last_applied >= 5
    assert fs.read(LOG) == before


def test_a_log_compacted_past_its_snapshot_is_corruption() -> None:
    entries = log_of(8)
    fs = _node_with(8)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_snapshot(snapshot_at(entries[5]), 6)
    atomic_write(fs, SNAP, encode_snapshot(snapshot_at(entries[2])))
    with pytest.raises(StorageCorruption, match="does not join"):
        FileNodeStorage(fs, DIR).load()


def test_leftover_temp_files_are_removed() -> None:
    fs = _node_with(2)
    fs.write(META + ".tmp", b"half a meta")
    FileNodeStorage(fs, DIR).load()
    assert not fs.exists(META + ".tmp")


def test_writing_before_load_is_refused() -> None:
    fs = _node_with(3)
    s = FileNodeStorage(fs, DIR)
    with pytest.raises(InvariantViolation):
        s.save_snapshot(snapshot_at(log_of(3)[1]), 2)
    with pytest.raises(InvariantViolation):
        s.append(log_of(4)[3:])
    assert FileNodeStorage(fs, DIR).load().last_index == 3


def test_a_compaction_that_keeps_entries_copies_them_off_the_disk_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``prepare_compaction`` (the snapshot thread) writes the kept entries; the
    compaction on the disk thread then writes only the lines appended since. Rewriting
    1,000 kept entries there held log appends up: the p99 of writes doubled."""
    entries = log_of(300)
    fs = _node_with(300)
    s = FileNodeStorage(fs, DIR)
    s.load()
    snap = snapshot_at(entries[289])  # index 290
    keep = snapshot_anchor(snapshot_at(entries[259]).meta)  # keep 261..290 behind it
    s.write_snapshot_file(snap)
    s.prepare_compaction(snap, keep)
    more = chain(entries[-1], 2)
    s.append(more)  # the disk thread goes on meanwhile
    s.sync()
    written: list[int] = []
    for name in ("write", "append"):
        real = getattr(fs, name)

        def recording(path: str, data: bytes, real: Callable[[str, bytes], None] = real) -> None:
            if ".seal" not in path:  # the log's seal (storage/log_seal.py) is not log bytes
                written.append(len(data))
            real(path, data)

        monkeypatch.setattr(fs, name, recording)
    s.compact_to_snapshot(snap, keep)
    tail = sum(len(encode_line(e)) for e in [*entries[290:], *more])
    assert sum(written) == tail  # the 12 lines after the snapshot's, nothing kept before it
    state = FileNodeStorage(fs, DIR).load()
    assert (state.anchor.index, state.anchor.hash) == (260, entries[259].hash)
    assert plain(state.entries) == [*entries[260:], *more]
    assert not any(name.endswith(".tmp") for name in fs.listdir(DIR))


def test_entries_kept_behind_a_snapshot_are_compacted_only_once_that_drops_four_times_what_it_keeps() -> (
    None
):
    """Keeping 40 of 300 lines behind a snapshot copies 40 to drop 260, over
    ``COMPACTION_DROP_RATIO`` times: done. Keeping 100 would copy 100 to drop 200: the
    file stays as it is for now (it holds them all)."""
    entries = log_of(300)
    for keep_index, anchor in ((260, 260), (200, 0)):
        fs = _node_with(300)
        s = FileNodeStorage(fs, DIR)
        s.load()
        snap = snapshot_at(entries[-1])
        s.write_snapshot_file(snap)
        keep = snapshot_anchor(snapshot_at(entries[keep_index - 1]).meta)
        s.prepare_compaction(snap, keep)
        s.compact_to_snapshot(snap, keep)
        state = FileNodeStorage(fs, DIR).load()
        assert state.anchor.index == anchor
        assert plain(state.entries) == entries[anchor:]


def test_a_compaction_file_left_by_a_crash_is_removed_at_start_and_never_read() -> None:
    """``log.jsonl.compacting.tmp`` is only renamed over the log once complete: one left
    behind (a crash while it was written, or garbage someone put there) is dropped."""
    fs = _node_with(5)
    fs.write(LOG + ".compacting.tmp", b'{"not": "a log"}\n\x00\xff garbage')
    state = FileNodeStorage(fs, DIR).load()
    assert plain(state.entries) == log_of(5)
    assert not fs.exists(LOG + ".compacting.tmp")


def test_appends_are_written_in_place_into_space_allocated_ahead() -> None:
    """The log grows by allocations (zeros), each batch written after the last line:
    its length changes only when a batch runs past the allocated space, and a reload
    reads every entry with no tail to cut."""
    fs = MemoryFileSystem(allocate_ahead=8192)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_hard_state(HardState(term=1, vote=None, commit=0), 0)
    entries = log_of(60)
    lengths = []
    for at in range(0, 60, 3):
        s.append(entries[at : at + 3])
        s.sync()
        lengths.append(len(fs.read(LOG)))
    lines = b"".join(encode_line(e) for e in [GENESIS, *entries])
    data = fs.read(LOG)
    assert data.startswith(lines) and data[len(lines) :] == bytes(len(data) - len(lines))
    assert 1 < len(set(lengths)) < len(lengths)  # grew a few times, not at every batch
    fs.crash()
    again = FileNodeStorage(fs, DIR)
    assert plain(again.load().entries) == entries and again.cut_tail is None


def test_a_snapshot_at_the_last_entry_compacts_a_log_allocated_ahead() -> None:
    """The last line's end is the log's own, not the file's (zeros follow it)."""
    entries = log_of(5)
    fs = _node_with(5)
    assert fs.read(LOG).endswith(b"\0")
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_snapshot(snapshot_at(entries[4]), 5)
    s.append(chain(entries[4], 2))
    s.sync()
    state = FileNodeStorage(fs, DIR).load()
    assert (state.anchor.index, state.anchor.hash) == (5, entries[4].hash)
    assert plain(state.entries) == chain(entries[4], 2)


def _zero_line(fs: MemoryFileSystem, index: int) -> None:
    """Zero a stretch of the line of ``index``, as a sector a crash never wrote."""
    data = bytearray(fs.read(LOG))
    start = len(b"".join(encode_line(e) for e in [GENESIS, *log_of(index - 1)]))
    data[start + 5 : start + 40] = bytes(35)
    fs.write_at(LOG, 0, bytes(data))
    fs.fsync(LOG)


def test_a_line_never_wholly_written_is_cut_with_the_lines_after_it() -> None:
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_hard_state(HardState(term=2, vote="n2", commit=3), 3)
    s.append(log_of(8))
    s.sync()
    _zero_line(fs, 5)
    again = FileNodeStorage(fs, DIR)
    state = again.load()
    assert plain(state.entries) == log_of(4)
    assert again.cut_tail is not None and "never written" in again.cut_tail
    assert fs.read(LOG) == b"".join(encode_line(e) for e in [GENESIS, *log_of(4)])


def test_a_cut_below_the_commit_index_is_corruption_and_leaves_the_file() -> None:
    """meta.json's commit index is saved only after the log under it is synced: a
    bad line under it is damage to committed entries, never a crash's torn tail."""
    fs = _node_with(8)  # commit 8
    _zero_line(fs, 5)
    before = fs.read(LOG)
    with pytest.raises(StorageCorruption, match="below the commit index 8") as info:
        FileNodeStorage(fs, DIR).load()
    assert info.value.path == LOG and info.value.index == 5
    assert fs.read(LOG) == before


def test_on_a_real_disk_the_log_is_allocated_ahead_and_reloads_whole(tmp_path: Path) -> None:
    folder = str(tmp_path / "n1")
    fs = OsFileSystem()
    s = FileNodeStorage(fs, folder)
    s.load()
    s.save_hard_state(HardState(term=1, vote=None, commit=0), 0)
    entries = log_of(40)
    for at in range(0, 40, 4):
        s.append(entries[at : at + 4])
        s.sync()
    s.close()
    fs.close()
    log = Path(folder) / "log.jsonl"
    lines = b"".join(encode_line(e) for e in [GENESIS, *entries])
    assert log.stat().st_size == ALLOCATE_AHEAD_BYTES + len(encode_line(GENESIS)) + sum(
        len(encode_line(e)) for e in entries[:4]
    )  # allocated once, at the first batch
    assert log.read_bytes().rstrip(b"\0") == lines
    again = FileNodeStorage(OsFileSystem(), folder)
    state = again.load()
    assert plain(state.entries) == entries and again.cut_tail is None
    again.truncate_from(31)
    again.append(chain(entries[29], 3, tag="new term"))
    again.sync()
    again.close()
    reloaded = FileNodeStorage(OsFileSystem(), folder).load()
    assert plain(reloaded.entries) == [*entries[:30], *chain(entries[29], 3, tag="new term")]
