"""The in-memory RaftLog: anchor, slicing, term search, truncation, compaction."""

from __future__ import annotations

import pytest

from resonetics.errors import InvariantViolation
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.raft.log import RaftLog, entries_size_bytes, entry_size_bytes


def chain(terms: list[int], data: object = None) -> list[Entry]:
    out: list[Entry] = []
    prev = GENESIS
    for i, t in enumerate(terms, start=1):
        prev = make_entry(prev.hash, t, i, EntryType.CLIENT_CMD, data)
        out.append(prev)
    return out


def test_log_starts_at_its_anchor() -> None:
    log = RaftLog(GENESIS)
    assert (log.last_index, log.last_term, log.first_index) == (0, 0, 1)
    assert log.hash_at(0) == GENESIS.hash
    assert log.term_at(1) is None


def test_term_and_hash_lookup() -> None:
    entries = chain([1, 1, 2, 3])
    log = RaftLog(GENESIS, entries)
    assert [log.term_at(i) for i in range(5)] == [0, 1, 1, 2, 3]
    assert log.hash_at(4) == entries[3].hash
    assert log.matches(3, 2, entries[2].hash)
    assert not log.matches(3, 2, entries[1].hash)


def test_append_refuses_an_entry_that_does_not_link() -> None:
    entries = chain([1, 1])
    forged = Entry(term=1, index=2, type=EntryType.CLIENT_CMD, data="x", hash=entries[1].hash)
    with pytest.raises(InvariantViolation):
        RaftLog(GENESIS, [entries[0], forged])
    with pytest.raises(InvariantViolation):
        RaftLog(GENESIS, [entries[1]])  # gap


def test_slice_bounded_by_count_and_bytes_but_never_empty() -> None:
    entries = chain([1] * 10, data="x" * 1000)
    log = RaftLog(GENESIS, entries)
    assert len(log.slice(1, 10, count_max=3)) == 3
    size = entry_size_bytes(entries[0])
    assert len(log.slice(1, 10, bytes_max=size * 4 + 1)) == 4
    assert len(log.slice(1, 10, bytes_max=1)) == 1  # an oversized entry still goes alone
    assert log.slice(11, 20) == []


def test_first_and_last_index_of_a_term() -> None:
    log = RaftLog(GENESIS, chain([1, 1, 2, 2, 2, 5]))
    assert log.first_index_of_term(2, 4) == 3
    assert log.last_index_of_term(2) == 5
    assert log.last_index_of_term(3) is None
    assert log.last_index_of_term(0) == 0  # the genesis anchor


def test_find_conflict_compares_hashes() -> None:
    mine = chain([1, 1, 2])
    theirs = chain([1, 1, 3, 3])
    log = RaftLog(GENESIS, mine)
    assert log.find_conflict(theirs) == 3
    assert log.find_conflict(mine) is None
    assert log.find_conflict(chain([1, 1, 2, 2])) == 4


def test_truncation_never_cuts_a_committed_entry() -> None:
    log = RaftLog(GENESIS, chain([1, 1, 2]))
    with pytest.raises(InvariantViolation):
        log.truncate_from(2, committed=2)
    log.truncate_from(3, committed=2)
    assert log.last_index == 2


def test_compaction_keeps_the_chain_through_a_snap_dummy_anchor() -> None:
    entries = chain([1, 1, 2, 2])
    log = RaftLog(GENESIS, entries)
    log.compact(2)
    assert log.anchor.type is EntryType.SNAP_DUMMY
    assert (log.anchor.index, log.anchor.term, log.anchor.hash) == (2, 1, entries[1].hash)
    assert log.term_at(1) is None and log.hash_at(2) == entries[1].hash
    assert log.entries_from(0) == entries[2:]
    log.truncate_from(4, committed=3)
    log.append([entries[3]])  # still links to the chain across the anchor
    assert log.last_index == 4


def _typed_chain(types: list[EntryType], start: Entry = GENESIS) -> list[Entry]:
    out: list[Entry] = []
    prev = start
    for t in types:
        prev = make_entry(prev.hash, 1, prev.index + 1, t, {"i": prev.index + 1})
        out.append(prev)
    return out


def _scan_last_config(log: RaftLog, at_or_before: int) -> Entry | None:
    """The brute-force answer: walk back from ``at_or_before`` to the anchor."""
    for index in range(min(at_or_before, log.last_index), log.first_index - 1, -1):
        e = log.entry_at(index)
        if e.type is EntryType.CONFIG:
            return e
    return None


def test_config_lookups_agree_with_a_scan_through_append_truncate_and_compact() -> None:
    cmd, cfg = EntryType.CLIENT_CMD, EntryType.CONFIG
    log = RaftLog(GENESIS, _typed_chain([cmd, cfg, cmd, cmd, cfg, cmd, cfg, cmd]))

    def agree() -> None:
        assert log.last_config_entry() == _scan_last_config(log, log.last_index)
        for index in range(log.anchor.index, log.last_index + 2):
            assert log.last_config_at_or_before(index) == _scan_last_config(log, index)

    agree()
    assert log.last_config_entry() is not None and log.last_config_entry().index == 7
    log.truncate_from(7, committed=3)  # cuts the CONFIG at 7
    agree()
    assert log.last_config_entry() is not None and log.last_config_entry().index == 5
    log.append(_typed_chain([cfg, cmd], start=log.last_entry))
    agree()
    log.compact(5)  # the CONFIG at 5 becomes part of the anchor's past
    agree()
    assert log.last_config_at_or_before(6) is None
    log.compact(8)
    agree()
    assert log.last_config_entry() is None


def _bounds_agree(log: RaftLog, entries: list[Entry]) -> None:
    """``first_index``/``last_index`` (attributes kept by each mutation) and every lookup
    against the brute-force answer from the anchor and the entries themselves."""
    anchor = log.anchor
    assert log.first_index == anchor.index + 1
    assert log.last_index == (entries[-1].index if entries else anchor.index)
    assert log.entries_from(0) == entries
    assert log.last_entry == (entries[-1] if entries else anchor)
    by_index = {anchor.index: anchor} | {e.index: e for e in entries}
    for index in range(anchor.index - 2, log.last_index + 3):
        e = by_index.get(index)
        assert log.at(index) == e
        assert log.term_at(index) == (None if e is None else e.term)
        assert log.hash_at(index) == (None if e is None else e.hash)
    assert log.slice(0, log.last_index + 5) == entries
    assert log.slice(log.last_index + 1, log.last_index + 5) == []


def test_last_index_cache_invalidated_on_every_mutation() -> None:
    """The log's bounds are attributes set by append, truncate_from and compact (and a
    snapshot install, which builds a new log at the snapshot's anchor): after each,
    they and every lookup built on them agree with the entries actually held."""
    entries = chain([1, 1, 2, 2, 3, 3, 3])
    log = RaftLog(GENESIS, entries[:2])
    _bounds_agree(log, entries[:2])
    log.append(entries[2:6])
    _bounds_agree(log, entries[:6])
    log.truncate_from(5, committed=2)
    _bounds_agree(log, entries[:4])
    log.append(entries[4:7])
    _bounds_agree(log, entries[:7])
    log.compact(3)
    _bounds_agree(log, entries[3:7])
    log.truncate_from(6, committed=4)
    _bounds_agree(log, entries[3:5])
    log.compact(5)  # everything: only the anchor is left
    _bounds_agree(log, [])
    log.append(entries[5:7])
    _bounds_agree(log, entries[5:7])
    anchor = log.at(6)
    assert anchor is not None
    installed = RaftLog(  # what RaftNode._install_snapshot builds for a new snapshot
        Entry(term=anchor.term, index=6, type=EntryType.SNAP_DUMMY, data=None, hash=anchor.hash)
    )
    _bounds_agree(installed, [])
    installed.append(entries[6:7])
    _bounds_agree(installed, entries[6:7])


def test_a_failed_append_leaves_the_bounds_at_what_was_appended() -> None:
    """An append that stops at a bad entry keeps the good ones before it, and the
    bounds say so (the attribute is set per entry, not once at the end)."""
    entries = chain([1, 1, 1])
    log = RaftLog(GENESIS)
    forged = Entry(term=1, index=3, type=EntryType.CLIENT_CMD, data="x", hash="f" * 64)
    with pytest.raises(InvariantViolation):
        log.append([entries[0], entries[1], forged])
    _bounds_agree(log, entries[:2])


def test_entries_size_bytes_is_the_sum_of_each_entry_size() -> None:
    """One encode of the batch gives exactly the per-entry sum (the snapshot byte rules
    count what every persisted Ready adds; the count decides when a snapshot is taken)."""
    datas: list[object] = [
        None,
        {"op": "kv_set", "args": {"key": "k", "value": "v"}, "ts": 12},
        [{"client_id": "c", "request_id": "r1"}, {"client_id": "c", "request_id": "r2"}],
        {"voters": ["n1", "n2"], "learners": []},
        "ünïcödé \\" + '"quoted"' + " \n tab\t",
        {"f": 9e15, "g": -0.0, "h": 1.5e-7, "big": 2**70},
        [],
        {},
        "",
        0,
    ]
    entries = [
        make_entry(GENESIS.hash, 1, i + 1, EntryType.CLIENT_CMD, d) for i, d in enumerate(datas)
    ]
    for lo in range(len(entries)):
        for hi in range(lo, len(entries) + 1):
            batch = entries[lo:hi]
            assert entries_size_bytes(batch) == sum(entry_size_bytes(e) for e in batch)


def test_a_large_recovered_log_taken_whole_is_the_log_appended_one_by_one() -> None:
    """Past ``_BULK_ENTRIES_MIN`` a linked recovered log is adopted as one list: the same
    bounds, lookups and CONFIG index as appending entry by entry."""
    entries: list[Entry] = []
    prev = GENESIS
    for i in range(1, 3_001):
        kind = EntryType.CONFIG if i in (7, 1_500, 2_999) else EntryType.CLIENT_CMD
        prev = make_entry(
            prev.hash,
            1 + i // 1_000,
            i,
            kind,
            {"voters": ["n1"]} if kind is EntryType.CONFIG else i,
        )
        entries.append(prev)
    whole = RaftLog(GENESIS, entries, linked=True)
    one_by_one = RaftLog(GENESIS, entries)
    assert (whole.first_index, whole.last_index) == (one_by_one.first_index, 3_000)
    for index in (0, 1, 6, 7, 8, 1_499, 1_500, 2_998, 2_999, 3_000):
        assert whole.term_at(index) == one_by_one.term_at(index)
        assert whole.hash_at(index) == one_by_one.hash_at(index)
        assert whole.last_config_at_or_before(index) == one_by_one.last_config_at_or_before(index)


def test_a_large_recovered_log_with_a_gap_is_refused() -> None:
    entries = chain([1] * 2_000)
    with pytest.raises(InvariantViolation, match="contiguous"):
        RaftLog(GENESIS, entries[:500] + entries[501:], linked=True)
    with pytest.raises(InvariantViolation, match="follow the anchor"):
        RaftLog(GENESIS, entries[1:], linked=True)
