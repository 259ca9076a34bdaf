"""The log's seal: what a restart may take without checking line by line, and when a
seal counts for nothing (``storage/log_seal.py``)."""

from __future__ import annotations

import hashlib
import itertools
import zlib

import msgspec
import pytest

from resonetics.errors import StorageCorruption
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.ready import HardState
from resonetics.storage import log_file, log_seal
from resonetics.storage.fs import MemoryFileSystem, atomic_write
from resonetics.storage.log_file import encode_line, parse_log
from resonetics.storage.log_seal import Seal, read_seal, seal_path
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.recovery import snapshot_anchor
from resonetics.storage.verify import verify_node
from tests.storage.chain import chain, log_of, plain, snapshot_at

DIR = "/data/n1"
LOG = DIR + "/log.jsonl"
SEAL = seal_path(LOG)


def _stored(entries: list[Entry], *, close: bool = True) -> MemoryFileSystem:
    fs = MemoryFileSystem()
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_hard_state(HardState(term=1, vote="n1", commit=entries[-1].index), 0)
    s.append(entries)
    s.sync()
    if close:
        s.close()
    return fs


def _full_parse(fs: MemoryFileSystem) -> log_file.ParsedLog:
    return parse_log(fs.read(LOG), LOG)


def _flip(fs: MemoryFileSystem, at: int) -> None:
    data = bytearray(fs.read(LOG))
    data[at] ^= 0x01
    atomic_write(fs, LOG, bytes(data))


def test_a_clean_close_seals_the_log_and_the_next_load_takes_every_line_on_it() -> None:
    entries = log_of(40)
    fs = _stored(entries)
    seal = read_seal(fs, LOG)
    assert seal is not None and seal.bytes == len(fs.read(LOG).rstrip(b"\0"))
    assert seal.sha256 == hashlib.sha256(fs.read(LOG)[: seal.bytes]).hexdigest()
    parsed = parse_log(fs.read(LOG), LOG, seal)
    assert parsed.sealed_lines == 41  # GENESIS and the 40 entries
    full = _full_parse(fs)
    assert parsed.entries == full.entries and parsed.offsets == full.offsets
    assert parsed.valid_end == full.valid_end and full.sealed_lines == 0
    state = FileNodeStorage(fs, DIR).load()
    assert plain(state.entries) == entries


def test_lines_after_the_seal_are_checked_and_the_first_must_link_to_the_sealed_ones() -> None:
    entries = log_of(10)
    fs = _stored(entries)  # sealed through index 10
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.append(chain(entries[-1], 5))
    s.sync()  # not closed: the seal still ends at index 10 (a crash, say)
    data = fs.read(LOG)
    sealed = read_seal(fs, LOG)
    assert sealed is not None and sealed.bytes < len(data.rstrip(b"\0"))
    parsed = parse_log(data, LOG, sealed)
    assert (parsed.sealed_lines, len(parsed.entries)) == (11, 16)
    line_14 = parsed.offsets[13]
    _flip(fs, line_14 + 20)  # a byte of the 14th line, after the seal
    with pytest.raises(StorageCorruption) as info:
        FileNodeStorage(fs, DIR).load()
    assert info.value.line == 14
    # The first line after the seal must link to the last sealed one: replace line 12
    # (index 11) by an entry of another history, CRC and all.
    fs = _stored(entries)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.append(chain(entries[-1], 1, tag="other-"))
    s.sync()
    forged = chain(make_entry(GENESIS.hash, 1, 10, EntryType.NOOP, None), 1)
    data = fs.read(LOG)
    at = parse_log(data, LOG).offsets[11]
    end = data.index(b"\n", at) + 1
    atomic_write(fs, LOG, data[:at] + encode_line(forged[0]) + data[end:])
    with pytest.raises(StorageCorruption, match="hash chain") as info:
        FileNodeStorage(fs, DIR).load()
    assert info.value.line == 12


def test_a_changed_byte_under_the_seal_voids_it_and_every_line_is_checked() -> None:
    """Bytes that no longer hash to the seal are checked as if there were none: the
    corrupt line is named exactly as a load without a seal names it."""
    fs = _stored(log_of(30))
    offsets = _full_parse(fs).offsets
    _flip(fs, offsets[7] + 15)  # line 8, well inside the sealed bytes
    with pytest.raises(StorageCorruption) as sealed:
        FileNodeStorage(fs, DIR).load()
    fs.remove(SEAL)
    with pytest.raises(StorageCorruption) as unsealed:
        FileNodeStorage(fs, DIR).load()
    assert (sealed.value.line, sealed.value.reason) == (unsealed.value.line, unsealed.value.reason)
    assert sealed.value.line == 8


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b'{"bytes": 10}',
        b'{"bytes": -5, "sha256": "' + b"0" * 64 + b'"}',
        b'{"bytes": 99999999, "sha256": "' + b"0" * 64 + b'"}',
        b'{"bytes": 10, "sha256": "' + b"0" * 64 + b'"}',
        b'{"bytes": 10, "sha256": "' + b"0" * 64 + b'", "extra": 1}',
    ],
)
def test_an_unreadable_or_wrong_seal_is_no_seal(content: bytes) -> None:
    """A seal only saves work: garbage, a length past the file or not at a line's end,
    another digest: every line is checked and the node starts."""
    entries = log_of(12)
    fs = _stored(entries)
    atomic_write(fs, SEAL, content)
    seal = read_seal(fs, LOG)
    parsed = parse_log(fs.read(LOG), LOG, seal)
    assert parsed.sealed_lines == 0
    assert plain(FileNodeStorage(fs, DIR).load().entries) == entries


def test_the_log_is_sealed_as_it_grows_and_only_over_synced_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(log_file, "SEAL_EVERY_BYTES", 2_000)
    entries = log_of(60)
    fs = _stored(entries[:5], close=False)
    s = FileNodeStorage(fs, DIR)
    s.load()
    seals: list[int] = []
    for e in entries[5:]:
        s.append([e])
        seal = read_seal(fs, LOG)
        assert seal is None or seal.bytes <= len(fs.read(LOG).rstrip(b"\0"))  # not the buffer
        s.sync()
        seal = read_seal(fs, LOG)
        if seal is not None and (not seals or seal.bytes != seals[-1]):
            seals.append(seal.bytes)
    assert len(seals) >= 3 and all(b - a >= 2_000 for a, b in itertools.pairwise(seals))
    data = fs.read(LOG)
    last = read_seal(fs, LOG)
    assert last is not None
    assert last.sha256 == hashlib.sha256(data[: last.bytes]).hexdigest()


def test_a_truncation_of_synced_lines_stops_sealing_until_the_next_load() -> None:
    entries = log_of(20)
    fs = _stored(entries)
    before = read_seal(fs, LOG)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.save_hard_state(HardState(term=2, vote="n2", commit=20), 0)
    s.truncate_from(15)
    s.append(chain(entries[13], 6, term=2, tag="new-"))
    s.sync()
    s.close()
    assert read_seal(fs, LOG) == before  # not sealed again: the digest was dropped
    state = FileNodeStorage(fs, DIR).load()  # the old seal no longer holds: all checked
    assert [e.term for e in state.entries][-7:] == [1, 2, 2, 2, 2, 2, 2]
    assert parse_log(fs.read(LOG), LOG, read_seal(fs, LOG)).sealed_lines == 0


def test_a_compaction_leaves_a_seal_of_the_new_file() -> None:
    entries = log_of(300)
    fs = _stored(entries)
    s = FileNodeStorage(fs, DIR)
    s.load()
    snap = snapshot_at(entries[289])
    keep = snapshot_anchor(snapshot_at(entries[259]).meta)
    s.write_snapshot_file(snap)
    s.prepare_compaction(snap, keep)  # the kept lines, written off the disk thread
    s.append(chain(entries[-1], 2))
    s.sync()
    s.compact_to_snapshot(snap, keep)
    seal = read_seal(fs, LOG)
    assert seal is not None
    parsed = parse_log(fs.read(LOG), LOG, seal)
    assert parsed.sealed_lines == len(parsed.entries) == 43  # the anchor, 260..301
    s.compact_to_snapshot(snapshot_at(entries[299]))  # nothing kept: rewritten whole
    seal = read_seal(fs, LOG)
    assert seal is not None
    assert parse_log(fs.read(LOG), LOG, seal).sealed_lines == 3


def _old_style_line(entry: Entry) -> bytes:
    body = msgspec.json.encode(entry)
    return body[:-1] + b',"crc":"%08x"}\n' % zlib.crc32(body)


def test_a_log_with_lines_from_before_sorted_keys_is_never_sealed() -> None:
    """Such lines are re-encoded at load when their links are checked; a seal would let
    a restart skip that and keep bytes the chain does not cover."""
    data = {"op": "kv_set", "client_id": "c", "args": {"v": 1, "k": "x"}}
    first = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, data)
    fs = _stored([first])
    raw = fs.read(LOG)
    atomic_write(fs, LOG, raw[: raw.index(b"\n") + 1] + _old_style_line(first))
    fs.remove(SEAL)
    s = FileNodeStorage(fs, DIR)
    s.load()
    s.append(chain(first, 3))
    s.sync()
    s.close()
    assert read_seal(fs, LOG) is None
    assert len(FileNodeStorage(fs, DIR).load().entries) == 4


def test_a_seal_is_taken_as_it_stands_by_the_node_and_never_by_verify() -> None:
    """Bytes that hash to the seal are the bytes this node checked and wrote, so its
    start takes them as they are. ``resonetics verify`` is the independent check: it
    reads no seal. Shown with a seal recomputed over a line whose CRC is wrong (what
    only someone rewriting both files can make): the node starts, verify refuses it."""
    entries = log_of(8)
    fs = _stored(entries)
    data = bytearray(fs.read(LOG))
    at = _full_parse(fs).offsets[4]
    crc_at = data.index(b',"crc":"', at) + len(b',"crc":"')
    data[crc_at : crc_at + 8] = b"00000000"
    atomic_write(fs, LOG, bytes(data))
    end = len(bytes(data).rstrip(b"\0"))
    atomic_write(fs, SEAL, msgspec.json.encode(Seal(end, hashlib.sha256(data[:end]).hexdigest())))
    assert plain(FileNodeStorage(fs, DIR).load().entries) == entries
    report = verify_node(fs, DIR)
    assert any("checksum" in str(p) for p in report.problems), report.problems


def test_seal_records_round_trip() -> None:
    fs = MemoryFileSystem()
    fs.mkdir(DIR)
    log_seal.write_seal(fs, LOG, Seal(123, "ab" * 32))
    assert read_seal(fs, LOG) == Seal(123, "ab" * 32)
