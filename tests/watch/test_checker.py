"""The watch-stream checker catches each defect it exists for (a gap, a duplicate, a
reorder, a wrong hash, a foreign change) and passes a correct stream."""

from __future__ import annotations

import msgspec
import pytest

from resonetics.check.watch_stream import CommittedChange, check_stream, committed_changes
from resonetics.raft.entry import EntryType
from resonetics.wire.watch import WatchEvent
from tests.watch.logbuild import Log


def _log() -> Log:
    log = Log()
    log.cmd("kv_set", k="a/1", v=1)
    log.cmd("kv_set", k="b/1", v=1)
    log.batch(("kv_set", {"k": "a/2", "v": 2}), ("kv_delete", {"k": "a/1"}))
    log.add(EntryType.NOOP)
    log.cmd("kv_cas", k="a/2", expected=2, v=3)
    return log


def _events(committed: list[CommittedChange], prefix: str = "a/") -> list[WatchEvent]:
    return [
        WatchEvent(index=c.index, term=c.term, hash=c.hash, key=c.key, kind=c.kind, value=c.value)  # type: ignore[arg-type]
        for c in committed
        if c.key.startswith(prefix)
    ]


def _check(events: list[WatchEvent], committed: list[CommittedChange]) -> list[str]:
    return check_stream(events, committed, prefix="a/", from_index=1, through=5).problems


def test_a_faithful_stream_passes() -> None:
    committed = committed_changes(_log().entries)
    assert [(c.index, c.key) for c in committed] == [
        (1, "a/1"), (2, "b/1"), (3, "a/2"), (3, "a/1"), (5, "a/2"),
    ]  # fmt: skip
    assert _check(_events(committed), committed) == []


def test_checker_catches_a_gap() -> None:
    committed = committed_changes(_log().entries)
    events = _events(committed)
    del events[1]
    assert any(p.startswith("gap") for p in _check(events, committed))


def test_checker_catches_a_duplicate() -> None:
    committed = committed_changes(_log().entries)
    events = _events(committed)
    events.insert(2, events[1])
    assert any(p.startswith("duplicate") for p in _check(events, committed))


def test_checker_catches_a_reorder() -> None:
    committed = committed_changes(_log().entries)
    events = _events(committed)
    events[0], events[3] = events[3], events[0]
    assert any(p.startswith("reorder") for p in _check(events, committed))


def test_checker_catches_a_reorder_within_an_entry() -> None:
    committed = committed_changes(_log().entries)
    events = _events(committed)
    events[1], events[2] = events[2], events[1]
    assert any(p.startswith("reorder") for p in _check(events, committed))


def test_checker_catches_a_wrong_hash() -> None:
    committed = committed_changes(_log().entries)
    events = _events(committed)
    events[0] = msgspec.structs.replace(events[0], hash="0" * 64)
    assert any(p.startswith("hash") for p in _check(events, committed))


def test_checker_catches_a_key_outside_the_prefix() -> None:
    committed = committed_changes(_log().entries)
    events = sorted(_events(committed, prefix=""), key=lambda e: e.index)
    assert any(p.startswith("foreign") for p in _check(events, committed))


def test_checker_refuses_a_log_that_does_not_chain() -> None:
    log = _log()
    entries = list(log.entries)
    entries[2] = msgspec.structs.replace(entries[2], data={"tampered": True})
    with pytest.raises(ValueError, match="does not link"):
        committed_changes(entries)
