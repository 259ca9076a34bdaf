"""The cyclic collector is paused around bulk work and left as it was found
(resonetics/gc_pause.py), by the driver's big applies too."""

from __future__ import annotations

import gc
import random

import pytest

from resonetics import limits
from resonetics.gc_pause import gc_paused
from resonetics.machine.replicated import ApplyResult
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import Entry, EntryType, make_entry
from resonetics.raft.messages import Message
from resonetics.raft.ready import HardState
from resonetics.runtime.driver import NodeDriver
from resonetics.storage.memory import MemoryNodeStorage


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_back_on_after_an_error() -> None:
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_inactive_pause_changes_nothing() -> None:
    with gc_paused(active=False):
        assert gc.isenabled()


class _Host:
    def now_ms(self) -> int:
        return 0

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def _restarted_with(committed: int) -> NodeDriver:
    """A node restarting over ``committed`` committed, not yet applied kv_set entries."""
    storage = MemoryNodeStorage()
    anchor = storage.load().anchor
    prev, entries = anchor.hash, []
    for i in range(1, committed + 1):
        data = {
            "client_id": "c",
            "request_id": f"r{i}",
            "op": "kv_set",
            "args": {"k": f"k{i}", "v": i},
            "ts": 1,
        }
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        entries.append(entry)
        prev = entry.hash
    storage.append(entries)
    storage.save_hard_state(HardState(term=1, vote="n1", commit=committed), 0)
    return NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)), storage, _Host(), random.Random(1)
    )


def _applies_seen(node: NodeDriver, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the collector was on at each apply, until everything committed is applied."""
    seen: list[bool] = []
    apply = node.machine.apply

    def recording(entry: Entry, *, answers: bool = True) -> ApplyResult:
        seen.append(gc.isenabled())
        return apply(entry, answers=answers)

    monkeypatch.setattr(node.machine, "apply", recording)
    while node.machine.last_applied < node.core.commit_index:
        node.process_ready()
    return seen


def test_a_replay_at_start_runs_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "APPLY_GC_PAUSE_ENTRIES_MIN", 3)
    node = _restarted_with(5)
    assert _applies_seen(node, monkeypatch) == [False] * 5
    assert gc.isenabled()
    assert node.machine.read("kv_get", {"k": "k5"})["value"] == 5


def test_an_apply_below_the_threshold_leaves_the_collector_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "APPLY_GC_PAUSE_ENTRIES_MIN", 3)
    assert _applies_seen(_restarted_with(2), monkeypatch) == [True, True]
