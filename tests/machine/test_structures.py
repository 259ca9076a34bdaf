"""The ready-made replicated structures, applied as the runtime applies them."""

from __future__ import annotations

import itertools
import random
from typing import Any

from resonetics.machine.base import StateMachine
from resonetics.machine.structures import Counter, Dict, Lock, Queue, Set

_index = itertools.count(1)


def _do(machine: StateMachine, op: str, ts: int = 0, **args: Any) -> Any:
    if op in machine.read_ops:
        return machine.read(op, args)
    return machine.apply(next(_index), {"op": op, "args": args, "ts": ts})


def test_counter_counts() -> None:
    c = Counter()
    assert _do(c, "incr", by=2) == 2 and _do(c, "incr") == 3 and _do(c, "get") == 3


def test_dict_get_set_delete_items() -> None:
    d = Dict()
    assert _do(d, "set", key="b", value=1) is None
    assert _do(d, "set", key="b", value=[2]) == 1
    _do(d, "set", key="a", value={"x": 1})
    assert _do(d, "get", key="b") == [2]
    assert _do(d, "items") == [["a", {"x": 1}], ["b", [2]]]
    assert _do(d, "delete", key="b") is True and _do(d, "delete", key="b") is False
    assert _do(d, "get", key="b") is None


def test_set_add_remove_contains_items() -> None:
    s = Set()
    assert _do(s, "add", item="y") is True and _do(s, "add", item="y") is False
    _do(s, "add", item="x")
    assert _do(s, "items") == ["x", "y"]
    assert _do(s, "remove", item="y") is True and _do(s, "contains", item="y") is False


def test_queue_taken_but_unacked_job_comes_back_after_its_visibility_timeout() -> None:
    q = Queue()
    job = _do(q, "put", ts=1000, payload="p")
    first = _do(q, "take", ts=1000, worker="w1", visibility_ms=500)
    assert first == {"id": job, "payload": "p", "attempt": 1}
    assert _do(q, "take", ts=1499, worker="w2", visibility_ms=500) is None  # still held
    again = _do(q, "take", ts=1500, worker="w2", visibility_ms=500)  # log time passed it
    assert again == {"id": job, "payload": "p", "attempt": 2}


def test_queue_ack_counts_exactly_once_and_only_for_the_holding_attempt() -> None:
    q = Queue()
    job = _do(q, "put", ts=0, payload=1)
    _do(q, "take", ts=0, worker="slow", visibility_ms=10)
    _do(q, "take", ts=20, worker="fast", visibility_ms=10)
    assert _do(q, "ack", ts=21, job=job, attempt=1) is False  # the slow worker lost it
    assert _do(q, "ack", ts=21, job=job, attempt=2) is True
    assert _do(q, "ack", ts=21, job=job, attempt=2) is False  # a second ack does nothing
    assert _do(q, "stats") == {"pending": 0, "taken": 0, "acked": 1}


def test_queue_hands_out_jobs_oldest_first() -> None:
    q = Queue()
    ids = [_do(q, "put", payload=n) for n in range(3)]
    taken = [_do(q, "take", worker="w")["id"] for _ in range(3)]
    assert taken == ids and _do(q, "take", worker="w") is None


def test_lock_ttl_expires_in_log_time_and_the_next_holder_gets_a_larger_token() -> None:
    lock = Lock()
    a = lock.apply(
        10, {"op": "acquire", "args": {"name": "x", "owner": "a", "ttl_ms": 100}, "ts": 0}
    )
    assert a == {"acquired": True, "owner": "a", "token": 10, "expires_ms": 100}
    b = lock.apply(
        11, {"op": "acquire", "args": {"name": "x", "owner": "b", "ttl_ms": 100}, "ts": 99}
    )
    assert b["acquired"] is False and b["owner"] == "a"
    b = lock.apply(
        12, {"op": "acquire", "args": {"name": "x", "owner": "b", "ttl_ms": 100}, "ts": 100}
    )
    assert b["acquired"] is True and b["token"] == 12 > a["token"]


def test_lock_fencing_tokens_strictly_increase_within_one_batched_entry() -> None:
    lock = Lock()
    cmds = [
        ("acquire", {"name": "x", "owner": "a", "ttl_ms": 100}),
        ("release", {"name": "x", "owner": "a", "token": 5}),
        ("acquire", {"name": "x", "owner": "b", "ttl_ms": 100}),
    ]
    # One CLIENT_BATCH entry: every command is applied at index 5.
    results = [lock.apply(5, {"op": op, "args": args, "ts": 0}) for op, args in cmds]
    assert results[0]["token"] == 5 and results[1] is True and results[2]["token"] == 6


def test_lock_refresh_and_release_need_the_holders_token() -> None:
    lock = Lock()
    lock.apply(3, {"op": "acquire", "args": {"name": "x", "owner": "a", "ttl_ms": 100}, "ts": 0})
    refresh = {"name": "x", "owner": "a", "token": 2, "ttl_ms": 100}
    assert lock.apply(4, {"op": "refresh", "args": refresh, "ts": 50}) is None
    assert lock.apply(5, {"op": "refresh", "args": {**refresh, "token": 3}, "ts": 50}) == 150
    assert (
        lock.apply(6, {"op": "release", "args": {"name": "x", "owner": "b", "token": 3}, "ts": 60})
        is False
    )
    assert lock.read("holder", {"name": "x"})["owner"] == "a"
    assert (
        lock.apply(7, {"op": "release", "args": {"name": "x", "owner": "a", "token": 3}, "ts": 60})
        is True
    )
    assert lock.read("holder", {"name": "x"}) is None


def test_lock_reacquire_by_its_holder_refreshes_and_keeps_the_token() -> None:
    lock = Lock()
    lock.apply(3, {"op": "acquire", "args": {"name": "x", "owner": "a", "ttl_ms": 100}, "ts": 0})
    again = lock.apply(
        9, {"op": "acquire", "args": {"name": "x", "owner": "a", "ttl_ms": 100}, "ts": 50}
    )
    assert again == {"acquired": True, "owner": "a", "token": 3, "expires_ms": 150}


def test_structure_survives_snapshot_and_restore() -> None:
    for factory in (Counter, Dict, Set, Queue, Lock):
        machine = factory()
        for op, args in (factory.sim_ops(random.Random(s)) for s in range(30)):
            if op not in machine.read_ops:
                machine.apply(next(_index), {"op": op, "args": args, "ts": 7})
        copy = factory()
        copy.restore(machine.snapshot())
        assert copy.snapshot() == machine.snapshot(), factory
