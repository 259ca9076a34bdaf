"""Crash at every operation of a scripted history, recover, and check what survived.

For each crash point k of the script (every file operation it makes), the
crash is replayed three ways: only fsynced bytes survive, and two seeded
crashes that may also keep unsynced bytes, tear the last write or keep part of
the pending renames. After recovery:

* no entry whose append had returned (synced) is lost, unless a later step
  that was in flight truncated it;
* the recovered log holds only entries of the history before or after the
  step in flight (prefix-wise), never a mix, never garbage;
* the term and vote are those saved before the step in flight or by it, never older;
* the recovered state is consistent (anchor, contiguous chain, snapshot, clamps);
* a torn tail is cut from the file, and a second recovery finds the same state.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.raft.entry import Entry, entry_links
from resonetics.raft.ready import HardState, Snapshot
from resonetics.storage.api import NodeStorage, RecoveredState
from resonetics.storage.fs import MemoryFileSystem, SimulatedCrash
from resonetics.storage.log_file import parse_log
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.recovery import snapshot_anchor
from tests.storage.chain import chain, log_of, plain, snapshot_at

DIR = "/data/n1"


@dataclass(frozen=True)
class Step:
    """One call (or append+sync group) and the durable history it leads to."""

    name: str
    run: Callable[[NodeStorage], None]
    log: list[Entry]
    hard_state: HardState
    snapshot: Snapshot | None
    #: Entries that must survive a crash during this step (None: the common
    #: prefix of the history before and after; a truncation lowers it).
    floor: int | None = None


def _load(s: NodeStorage) -> None:
    s.load()


def _append(entries: list[Entry], truncate: int | None = None) -> Callable[[NodeStorage], None]:
    def run(s: NodeStorage) -> None:
        if truncate is not None:
            s.truncate_from(truncate)
        s.append(entries)
        s.sync()

    return run


def _script() -> list[Step]:
    """load, votes, appends, a conflicting suffix, snapshots, more appends."""
    t1 = log_of(5, term=1)
    t2 = chain(t1[2], 5, term=2, tag="b")
    t3 = chain(t2[2], 2, term=3, tag="c")
    log2 = t1[:3] + t2
    log3 = log2[:6] + t3
    s3, s6 = snapshot_at(log2[2]), snapshot_at(log3[5], b"six")
    hs1, hs2 = HardState(1, "n1", 0), HardState(2, "n2", 3)
    hs3a, hs3b = HardState(3, None, 6), HardState(3, "n3", 6)
    e9 = chain(log3[-1], 1, term=3)
    e10 = chain(e9[-1], 1, term=3, tag="d")
    log9, log10 = [*log3, *e9], [*log3, *e9, *e10]
    hs3c = HardState(3, "n3", 9)
    s8 = snapshot_at(log9[7], b"eight")
    keep5 = snapshot_anchor(snapshot_at(log9[4]).meta)

    def snapshot_keeping(s: NodeStorage) -> None:
        """As a node takes one: the file and the kept entries' copy (snapshot thread),
        an append meanwhile (disk thread), then the compaction (disk thread)."""
        s.write_snapshot_file(s8)
        s.prepare_compaction(s8, keep5)
        s.append(e10)
        s.sync()
        s.compact_to_snapshot(s8, keep5)

    return [
        Step("load", _load, [], HardState(), None),
        Step("vote n1", lambda s: s.save_hard_state(hs1, 0), [], hs1, None),
        Step("append 1-3", _append(t1[:3]), t1[:3], hs1, None),
        Step("append 4-5", _append(t1[3:]), t1, hs1, None),
        Step("vote n2", lambda s: s.save_hard_state(hs2, 3), t1, hs2, None),
        Step("conflict at 4", _append(t2[:3], truncate=4), log2[:6], hs2, None, 3),
        Step("snapshot 3", lambda s: s.save_snapshot(s3, 3), log2[:6], hs2, s3),
        Step("append 7-8", _append(t2[3:]), log2, hs2, s3),
        Step("term 3", lambda s: s.save_hard_state(hs3a, 6), log2, hs3a, s3),
        Step("vote n3", lambda s: s.save_hard_state(hs3b, 6), log2, hs3b, s3),
        Step("conflict at 7", _append(t3, truncate=7), log3, hs3b, s3, 6),
        Step("snapshot 6", lambda s: s.save_snapshot(s6, 6), log3, hs3b, s6),
        Step("append 9", _append(e9), log9, hs3b, s6),
        Step("commit 9", lambda s: s.save_hard_state(hs3c, 9), log9, hs3c, s6),
        Step("snapshot 8 keeping 6-8", snapshot_keeping, log10, hs3c, s8),
    ]


def _run(fs: MemoryFileSystem, steps: list[Step]) -> int:
    """Run the steps until a crash; return the index of the step in flight (len if none)."""
    s = FileNodeStorage(fs, DIR)
    for i, step in enumerate(steps):
        try:
            step.run(s)
        except SimulatedCrash:
            return i
    return len(steps)


def _consistent(state: RecoveredState) -> None:
    prev = state.anchor
    for entry in state.entries:
        assert entry.index == prev.index + 1 and entry_links(prev.hash, entry)
        prev = entry
    snap = state.snapshot.meta.last_included_index if state.snapshot else 0
    if state.snapshot is not None:
        # At the snapshot, or before it when the log holds its entry (kept behind it).
        k = snap - state.anchor.index
        assert 0 <= k <= len(state.entries)
        at = state.anchor if k == 0 else state.entries[k - 1]
        assert at.hash == state.snapshot.meta.last_included_hash
    assert snap <= state.last_applied <= state.hard_state.commit <= state.last_index


def _holds_prefix_of(state: RecoveredState, log: list[Entry]) -> bool:
    """The recovered log is a prefix of ``log`` (indexes 1..n), compaction included."""
    a = state.anchor.index
    if state.last_index > len(log):
        return False
    if a >= 1 and log[a - 1].hash != state.anchor.hash:
        return False
    return plain(state.entries) == log[a : state.last_index]


def _common_prefix(a: list[Entry], b: list[Entry]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _check_recovery(fs: MemoryFileSystem, before: Step, flight: Step) -> None:
    state = FileNodeStorage(fs, DIR).load()
    _consistent(state)
    assert _holds_prefix_of(state, before.log) or _holds_prefix_of(state, flight.log), (
        "recovered log mixes histories"
    )
    floor = _common_prefix(before.log, flight.log)
    if flight.floor is not None:
        floor = min(floor, flight.floor)
    assert state.last_index >= floor, "a synced entry was lost"
    saved = (state.hard_state.term, state.hard_state.vote)
    allowed = {(h.term, h.vote) for h in (before.hard_state, flight.hard_state)}
    assert saved in allowed, f"term/vote {saved} not in {allowed}"
    assert state.snapshot in (before.snapshot, flight.snapshot)
    assert parse_log(fs.read(DIR + "/log.jsonl"), "log").torn is None, "torn tail not cut"
    fs.crash()
    again = FileNodeStorage(fs, DIR).load()
    assert (again.anchor, again.entries, again.hard_state) == (
        state.anchor,
        state.entries,
        state.hard_state,
    ), "recovery did not persist its repairs"


def _crash_points() -> int:
    fs = MemoryFileSystem()
    assert _run(fs, _script()) == len(_script())
    return fs.op_count


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_every_crash_point_of_the_script_recovers_safely(seed: int | None) -> None:
    steps = _script()
    points = _crash_points()
    assert points > 40
    for k in range(points):
        fs = MemoryFileSystem()
        fs.crash_at(k)
        flight = _run(fs, steps)
        assert flight < len(steps), f"crash point {k} not reached"
        fs.crash(None if seed is None else random.Random(seed * 1000 + k))
        before = steps[flight - 1] if flight > 0 else steps[0]
        _check_recovery(fs, before, steps[flight])


def test_the_script_without_a_crash_ends_in_its_final_state() -> None:
    fs = MemoryFileSystem()
    steps = _script()
    _run(fs, steps)
    fs.crash(random.Random(7))
    _check_recovery(fs, steps[-1], steps[-1])


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["append", "truncate", "vote", "snapshot"]), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    ),
    crash_frac=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_random_histories_survive_a_crash_anywhere(
    ops: list[tuple[str, int]], crash_frac: float, seed: int
) -> None:
    steps = _random_steps(ops)
    fs = MemoryFileSystem()
    _run(fs, steps)
    k = int(crash_frac * fs.op_count)
    fs = MemoryFileSystem()
    fs.crash_at(k)
    flight = _run(fs, steps)
    fs.crash(random.Random(seed))
    if flight == len(steps):
        _check_recovery(fs, steps[-1], steps[-1])
    else:
        _check_recovery(fs, steps[max(flight - 1, 0)], steps[flight])


def _vote(hs: HardState) -> Callable[[NodeStorage], None]:
    return lambda s: s.save_hard_state(hs, 0)


def _snap(snapshot: Snapshot) -> Callable[[NodeStorage], None]:
    return lambda s: s.save_snapshot(snapshot, 0)


def _random_steps(ops: list[tuple[str, int]]) -> list[Step]:
    """Turn (kind, n) pairs into a valid history: appends, truncations of the
    uncompacted suffix, new terms with votes, snapshots at a mid index."""
    log: list[Entry] = []
    hs = HardState(1, "n1", 0)
    snap: Snapshot | None = None
    steps = [
        Step("load", _load, [], HardState(), None),
        Step("vote", _vote(hs), [], hs, None),
    ]
    for kind, n in ops:
        first = snap.meta.last_included_index if snap else 0
        if kind == "append" or (kind == "truncate" and len(log) - first < 1):
            new = chain(log[-1], n, hs.term) if log else log_of(n, hs.term)
            log = log + new
            steps.append(Step(f"append {n}", _append(new), log, hs, snap))
        elif kind == "truncate":
            at = max(first + 1, len(log) - n + 1)
            prev = log[at - 2] if at >= 2 else None
            new = chain(prev, 1, hs.term, tag=f"t{len(steps)}") if prev else log_of(1, hs.term)
            log = log[: at - 1] + new
            steps.append(Step(f"truncate {at}", _append(new, truncate=at), log, hs, snap, at - 1))
        elif kind == "vote":
            hs = HardState(hs.term + 1, f"n{n}", 0)
            steps.append(Step("vote", _vote(hs), log, hs, snap))
        elif log and len(log) // 2 >= first:
            snap = snapshot_at(log[max(len(log) // 2, first, 1) - 1])
            steps.append(Step("snapshot", _snap(snap), log, hs, snap))
    return steps


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["append", "truncate", "vote", "snapshot"]), st.integers(1, 4)),
        max_size=12,
    )
)
def test_file_storage_agrees_with_the_memory_twin(ops: list[tuple[str, int]]) -> None:
    steps = _random_steps(ops)
    fs = MemoryFileSystem()
    _run(fs, steps)
    twin = MemoryNodeStorage()
    for step in steps:
        step.run(twin)
    got, want = FileNodeStorage(fs, DIR).load(), twin.load()
    assert (got.anchor, plain(got.entries), got.hard_state, got.last_applied, got.snapshot) == (
        want.anchor,
        want.entries,
        want.hard_state,
        want.last_applied,
        want.snapshot,
    )


def test_a_crash_during_recovery_is_recovered_too() -> None:
    """Recovery writes too (cutting a torn tail, finishing a compaction, creating
    a fresh folder): crash at each of its operations and recover again."""
    steps = _script()
    checked = 0
    for k in range(_crash_points()):
        base = MemoryFileSystem()
        base.crash_at(k)
        flight = _run(base, steps)
        base.crash(random.Random(k))
        probe = copy.deepcopy(base)
        FileNodeStorage(probe, DIR).load()
        before = steps[flight - 1] if flight > 0 else steps[0]
        for j in range(probe.op_count):
            fs = copy.deepcopy(base)
            fs.crash_at(j)
            with pytest.raises(SimulatedCrash):
                FileNodeStorage(fs, DIR).load()
            fs.crash(random.Random(j))
            _check_recovery(fs, before, steps[flight])
            checked += 1
    assert checked > 200, checked


def test_a_batch_whose_sectors_land_out_of_order_is_cut_and_every_synced_entry_kept() -> None:
    """The log is written in place into space allocated ahead, so a crash may keep any
    of an unsynced batch's sectors: a line with a sector never written (zeros) and
    whole lines after it. Recovery cuts from that line on, keeps every synced entry
    and never a line of the unsynced batch past a hole; the cut is durable."""
    entries = log_of(400)
    holes = 0
    for seed in range(300):
        rng = random.Random(seed)
        fs = MemoryFileSystem(allocate_ahead=rng.choice([0, 512, 4096]))
        s = FileNodeStorage(fs, DIR)
        s.load()
        s.save_hard_state(HardState(term=1, vote=None, commit=0), 0)
        synced = 0
        while synced < 300:
            batch = rng.randint(1, 12)  # up to about 4 KB: several sectors
            s.append(entries[synced : synced + batch])
            s.sync()
            synced += batch
        s.append(entries[synced : synced + rng.randint(2, 20)])  # the batch in flight

        def power_cut(path: str) -> None:
            raise SimulatedCrash("before the batch's fsync")

        fs.fsync = power_cut  # type: ignore[method-assign]  # written, never synced
        with pytest.raises(SimulatedCrash):
            s.sync()
        del fs.fsync
        fs.crash(random.Random(seed * 7 + 1))
        again = FileNodeStorage(fs, DIR)
        state = again.load()
        got = plain(state.entries)
        assert got == entries[: len(got)] and len(got) >= synced, seed
        if again.cut_tail is not None and "never written" in again.cut_tail:
            holes += 1
            assert FileNodeStorage(fs, DIR).load().entries == state.entries  # cut durably
    assert holes > 0  # the scattered crash was met, not only torn tails
