"""LogWrites: each write handed out once; durability follows only what advance() confirmed."""

from __future__ import annotations

from resonetics.raft.entry import GENESIS
from resonetics.raft.log import RaftLog
from resonetics.raft.log_writes import LogWrites
from tests.raft.harness import extend_log


def test_each_write_is_handed_out_once() -> None:
    log = RaftLog(GENESIS, extend_log([], [1, 1]))
    writes = LogWrites(2)
    assert not writes.has_writes(log)
    log.append(extend_log(log.entries_from(1), [1])[2:])
    assert writes.take(log) == (None, log.entries_from(3))
    assert writes.take(log) == (None, [])


def test_durable_index_moves_only_on_advance_of_entries_still_in_the_log() -> None:
    base = extend_log([], [1])
    log = RaftLog(GENESIS, base)
    writes = LogWrites(1)
    mine = extend_log(base, [1, 1])
    log.append(mine[1:])
    _, handed = writes.take(log)
    assert writes.durable_index == 1
    # Before the runtime confirms, a new leader replaces entry 3.
    log.truncate_from(3, committed=1)
    writes.on_truncate(3)
    log.append(extend_log(mine[:2], [2])[2:])
    writes.on_persisted(handed, log)
    assert writes.durable_index == 1  # the confirmed entry 3 is not this log's entry 3
    truncate_from, entries = writes.take(log)
    assert truncate_from == 3 and [e.term for e in entries] == [2]
    writes.on_persisted(entries, log)
    assert writes.durable_index == 3


def test_truncation_lowers_durable_index_at_once() -> None:
    log = RaftLog(GENESIS, extend_log([], [1, 1, 1]))
    writes = LogWrites(3)
    log.truncate_from(2, committed=1)
    writes.on_truncate(2)
    assert writes.durable_index == 1
    assert writes.take(log) == (2, [])
