"""The leader's lease keeper (runtime/leases.py): keep-alives in memory, expiry by entry."""

from __future__ import annotations

import random
from typing import Any

import pytest

from resonetics import limits
from resonetics.raft.config import RaftConfig
from resonetics.raft.messages import Message
from resonetics.runtime.dispatch import Routed, dispatch
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.storage.memory import MemoryNodeStorage
from resonetics.wire import codes


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def now_ms(self) -> int:
        return self.now

    def send(self, msg: Message) -> None:
        pass

    def flush(self) -> None:
        pass


def _leader() -> tuple[NodeDriver, _Clock]:
    clock = _Clock()
    node = NodeDriver(
        RaftConfig(node_id="n1", initial_voters=("n1",)),
        MemoryNodeStorage(),
        clock,
        random.Random(1),
    )
    node.core.campaign()
    node.process_ready()
    return node, clock


def _do(node: NodeDriver, op: str, args: dict[str, Any], rid: str = "r") -> Outcome:
    answers: list[Outcome] = []
    request = {"client_id": "c", "request_id": rid, "op": op, "args": args}
    dispatch(node, request, answers.append)
    for _ in range(5):
        if answers:
            break
        node.process_ready()
    assert len(answers) == 1, (op, answers)
    return answers[0]


def _ops_in_log(node: NodeDriver) -> list[str]:
    ops = []
    for index in range(1, node.core.last_index + 1):
        entry = node.core.entry_at(index)
        if entry is not None and isinstance(entry.data, dict) and "op" in entry.data:
            ops.append(entry.data["op"])
    return ops


def _grant(node: NodeDriver, ttl_ms: int, key: str) -> int:
    lease = int(_do(node, "lease_grant", {"ttl_ms": ttl_ms}, f"g-{key}").result["id"])
    assert _do(node, "kv_set", {"k": key, "v": 1, "lease": lease}, f"s-{key}").ok
    return lease


def test_keepalives_are_never_logged_and_keep_the_lease_past_its_ttl() -> None:
    node, clock = _leader()
    lease = _grant(node, 2_000, "a")
    logged = node.core.last_index
    for i in range(20):  # 20 s of keep-alives every second: ten TTLs
        clock.now += 1_000
        node.tick()
        node.process_ready()
        answer = _do(node, "lease_keepalive", {"id": lease}, f"k{i}")
        assert answer.ok and answer.result["remaining_ms"] == 2_000
    assert node.core.last_index == logged  # not one entry for 20 keep-alives
    assert node.machine.machine.get("a")["found"] is True  # type: ignore[attr-defined]
    assert node.leases.keepalives == 20


def test_the_leader_proposes_expiry_once_its_deadline_passes() -> None:
    node, clock = _leader()
    lease = _grant(node, 2_000, "a")
    node.tick()  # the keeper sees the lease: its deadline is now + TTL
    clock.now += 1_999
    node.tick()
    node.process_ready()
    assert "lease_expire" not in _ops_in_log(node)
    clock.now += 1
    node.tick()
    node.process_ready()
    node.process_ready()
    assert _ops_in_log(node).count("lease_expire") == 1
    assert node.machine.machine.get("a")["found"] is False  # type: ignore[attr-defined]
    answer = _do(node, "lease_keepalive", {"id": lease}, "late")
    assert answer.code == codes.LEASE_NOT_FOUND


def test_a_keepalive_after_expiry_was_proposed_is_refused() -> None:
    """The expire entry is in flight: acknowledging a keep-alive now would promise a TTL
    the entry is about to break."""
    node, clock = _leader()
    lease = _grant(node, 2_000, "a")
    node.tick()
    clock.now += 2_000
    node.tick()  # proposes lease_expire; not yet committed
    answers: list[Outcome] = []
    request = {"client_id": "c", "request_id": "k", "op": "lease_keepalive", "args": {"id": lease}}
    assert dispatch(node, request, answers.append) is Routed.HOST
    for _ in range(3):
        node.process_ready()
    assert [a.code for a in answers] == [codes.LEASE_NOT_FOUND]


def test_keepalive_of_an_unknown_lease_is_lease_not_found() -> None:
    node, _ = _leader()
    assert _do(node, "lease_keepalive", {"id": 42}).code == codes.LEASE_NOT_FOUND


def test_lease_info_answers_remaining_time_on_the_leaders_clock() -> None:
    node, clock = _leader()
    lease = _grant(node, 5_000, "a")
    node.tick()
    clock.now += 1_500
    info = _do(node, "lease_info", {"id": lease}).result
    assert info["keys"] == ["a"] and info["ttl_ms"] == 5_000 and info["remaining_ms"] == 3_500


def test_a_lost_leadership_forgets_the_in_memory_deadlines() -> None:
    node, clock = _leader()
    lease = _grant(node, 2_000, "a")
    node.tick()
    assert node.leases.deadline(lease) == clock.now + 2_000
    node.core._become_follower(node.core.term + 1, None)  # a higher term seen
    node.tick()
    assert node.leases.deadline(lease) is None
    assert _do(node, "lease_keepalive", {"id": lease}).code == codes.NOT_LEADER


def _found(node: NodeDriver, key: str) -> bool:
    return bool(node.machine.machine.get(key)["found"])  # type: ignore[attr-defined]


def test_expiry_goes_an_entry_of_bounded_keys_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every replica deletes an expiry entry's keys in one apply: the leader fills an
    entry up to ``LEASE_EXPIRE_KEYS_MAX`` keys (a lease holding more goes alone) and
    proposes the next only once the last is answered."""
    monkeypatch.setattr(limits, "LEASE_EXPIRE_KEYS_MAX", 3)
    node, clock = _leader()
    leases = {}
    for name, keys in (("a", 4), ("b", 2), ("c", 1)):
        leases[name] = _grant(node, 2_000, f"{name}0")
        for k in range(1, keys):
            key = f"{name}{k}"
            assert _do(node, "kv_set", {"k": key, "v": 1, "lease": leases[name]}, f"s-{key}").ok
    node.tick()  # the keeper sees the leases
    clock.now += 2_000
    node.tick()  # a (4 keys, over the budget) goes alone
    assert node.leases.expiries_proposed == 1
    node.tick()  # not answered yet: nothing more is proposed
    assert node.leases.expiries_proposed == 1
    node.process_ready()
    node.process_ready()
    assert not any(_found(node, f"a{k}") for k in range(4))
    assert _found(node, "b0") and _found(node, "c0")
    node.tick()  # answered: b and c (3 keys together) in the next entry
    assert node.leases.expiries_proposed == 2
    node.process_ready()
    node.process_ready()
    assert not any(_found(node, key) for key in ("b0", "b1", "c0"))
    node.tick()
    assert node.leases.expiries_proposed == 2  # nothing left to expire


def test_an_unanswered_expiry_entry_holds_the_next_back_only_for_the_retry_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer that never comes (it always does; this is the keeper's own guard) holds
    expiry back for ``LEASE_EXPIRE_RETRY_MS``, not for ever."""
    node, clock = _leader()
    _grant(node, 2_000, "a")
    _grant(node, 2_000, "b")
    monkeypatch.setattr(limits, "LEASE_EXPIRE_KEYS_MAX", 1)
    node.tick()
    clock.now += 2_000
    monkeypatch.setattr(node.leases, "_expiry_answered", lambda outcome: None)
    node.tick()
    assert node.leases.expiries_proposed == 1
    node.process_ready()
    node.process_ready()
    clock.now += limits.LEASE_EXPIRE_RETRY_MS - 1
    node.tick()
    assert node.leases.expiries_proposed == 1
    clock.now += 1
    node.tick()
    assert node.leases.expiries_proposed == 2


def test_a_keepalive_leaves_the_walk_over_every_lease_to_the_next_tick() -> None:
    """A grant changes the table; a keep-alive after it sets its own lease's deadline and
    walks nothing (with many leases and grants between keep-alives, each walked them all),
    and the next tick walks once. The lease granted meanwhile still gets its full TTL."""
    node, clock = _leader()
    _grant(node, 2_000, "a")
    node.tick()  # the keeper walks the table once
    walked = node.leases.resyncs
    lease = _grant(node, 2_000, "b")  # the table changed
    answer = _do(node, "lease_keepalive", {"id": lease}, "k-b")
    assert answer.ok and answer.result["remaining_ms"] == 2_000
    assert _do(node, "lease_info", {"id": lease}, "i-b").result["remaining_ms"] == 2_000
    assert node.leases.resyncs == walked
    node.tick()
    assert node.leases.resyncs == walked + 1
    clock.now += 1_999
    node.tick()
    node.process_ready()
    assert _found(node, "b")  # not a millisecond early
    clock.now += 1
    node.tick()
    node.process_ready()
    node.process_ready()
    assert not _found(node, "b")
