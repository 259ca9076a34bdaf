"""The change history: what applied entries changed, bounded, with a well-defined start."""

from __future__ import annotations

from resonetics.machine.changes import ChangeHistory, attach_history
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import EntryType
from tests.watch.logbuild import Log, changes, replica


def test_changes_are_results_failed_cas_and_absent_delete_change_nothing() -> None:
    log, (rkv, history) = Log(), replica()
    for entry in (
        log.cmd("kv_set", k="a", v=1),
        log.cmd("kv_cas", k="a", expected=2, v=3),  # fails: a is 1
        log.cmd("kv_delete", k="missing"),
        log.cmd("kv_cas", k="a", expected=1, v=4),
        log.cmd("kv_get", k="a", consistency="linearizable"),
        log.cmd("kv_delete", k="a"),
    ):
        rkv.apply(entry)
    assert changes(history) == [(1, "a", "put", 1), (4, "a", "put", 4), (6, "a", "delete", None)]
    record = next(history.records_from(4))
    assert (record.term, record.hash) == (1, log.entries[4].hash)


def test_a_deduplicated_retry_changes_nothing() -> None:
    log, (rkv, history) = Log(), replica()
    first = log.cmd("kv_set", k="a", v=1)
    retry = log.add(EntryType.CLIENT_CMD, first.data)
    rkv.apply(first)
    assert rkv.apply(retry).dedup
    assert changes(history) == [(1, "a", "put", 1)]


def test_a_batch_entry_files_all_its_changes_under_its_one_index() -> None:
    log, (rkv, history) = Log(), replica()
    rkv.apply(log.batch(("kv_set", {"k": "a", "v": 1}), ("kv_set", {"k": "b", "v": 2})))
    rkv.apply(log.add(EntryType.NOOP))
    rkv.apply(log.cmd("kv_set", k="c", v=3))
    assert changes(history) == [(1, "a", "put", 1), (1, "b", "put", 2), (3, "c", "put", 3)]
    assert len(history) == 2 and history.applied[0] == 3
    assert history.oldest_index == 1


def test_history_ring_drops_oldest_entries_and_oldest_index_follows() -> None:
    log, (rkv, history) = Log(), replica(changes_max=3)
    for i in range(10):
        rkv.apply(log.cmd("kv_set", k=f"k{i}", v=i))
    assert [c[0] for c in changes(history)] == [8, 9, 10]
    assert history.oldest_index == 8
    assert history.changes_held == 3


def test_history_ring_is_bounded_by_bytes_too() -> None:
    log, (rkv, history) = Log(), replica(bytes_max=2000)
    for i in range(50):
        rkv.apply(log.cmd("kv_set", k=f"k{i}", v="x" * 500))
    assert history.bytes_held <= 2000
    assert history.oldest_index == changes(history)[0][0]


def test_history_keeps_references_not_copies() -> None:
    log, (rkv, history) = Log(), replica()
    value = {"big": list(range(100))}
    entry = log.cmd("kv_set", k="a", v=value)
    rkv.apply(entry)
    ((_, _, stored),) = next(history.records_from(1)).changes
    assert stored is entry.data["args"]["v"]


def test_after_a_snapshot_restore_oldest_index_is_past_the_snapshot() -> None:
    log, (leader, _) = Log(), replica()
    for i in range(5):
        leader.apply(log.cmd("kv_set", k=f"k{i}", v=i))
    follower, history = replica()
    follower.apply(log.entries[1])
    follower.restore(leader.snapshot())
    assert history.oldest_index == 6  # nothing before the snapshot is history here
    assert history.resets == 1
    follower.apply(log.add(EntryType.NOOP))
    follower.apply(log.cmd("kv_set", k="z", v=0))
    assert changes(history) == [(7, "z", "put", 0)]
    assert history.oldest_index == 6  # the snapshot's index + 1, once learned


def test_a_restarted_node_holds_what_it_replayed_since_its_snapshot() -> None:
    log, (original, _) = Log(), replica()
    for i in range(4):
        original.apply(log.cmd("kv_set", k=f"k{i}", v=i))
    snapshot = original.snapshot()
    for i in range(4, 6):
        original.apply(log.cmd("kv_set", k=f"k{i}", v=i))
    restarted = ReplicatedKV()
    history = attach_history(restarted)
    assert history is not None
    restarted.restore(snapshot)
    for entry in log.entries[5:]:
        restarted.apply(entry)
    assert changes(history) == [(5, "k4", "put", 4), (6, "k5", "put", 5)]
    assert history.oldest_index == 5


def test_lag_counts_changes_and_bytes_after_a_position() -> None:
    log, (rkv, history) = Log(), replica()
    for i in range(6):
        rkv.apply(log.cmd("kv_set", k=f"k{i}", v=i))
    assert history.lag(4)[0] == 3
    assert history.lag(7) == (0, 0)
    assert history.lag(1)[1] > history.lag(4)[1] > 0


def test_no_listener_means_no_wake_ups_and_one_per_new_entry_otherwise() -> None:
    log, (rkv, history) = Log(), replica()
    woken: list[int] = []
    rkv.apply(log.cmd("kv_set", k="a", v=1))
    history.listener = lambda: woken.append(history.applied[0])
    rkv.apply(log.batch(("kv_set", {"k": "b", "v": 1}), ("kv_set", {"k": "c", "v": 1})))
    assert woken == [2]


def test_another_machine_gets_no_history() -> None:
    from resonetics.machine.base import StateMachine

    class Counter(StateMachine):
        def apply(self, index: int, command: object) -> int:
            return 0

        def snapshot(self) -> bytes:
            return b""

        def restore(self, data: bytes) -> None:
            pass

    assert attach_history(ReplicatedKV(Counter())) is None
    assert isinstance(ChangeHistory(ReplicatedKV()).oldest_index, int)
