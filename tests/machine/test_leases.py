"""Leases in the key-value machine (machine/leases.py): deterministic, log-time expiry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resonetics import limits
from resonetics.errors import StorageCorruption
from resonetics.machine.kv import KeyValueStore
from resonetics.steps import run_to_end as drain


class _Log:
    """Feeds commands at consecutive indexes with leader stamps ``ts``."""

    def __init__(self, machine: KeyValueStore | None = None) -> None:
        self.machine = machine if machine is not None else KeyValueStore()
        self.index = 0

    def __call__(self, op: str, ts: int, **args: Any) -> dict[str, Any]:
        self.index += 1
        result: dict[str, Any] = self.machine.apply(self.index, {"op": op, "args": args, "ts": ts})
        return result


def test_lease_id_is_the_grants_log_index_and_deadline_is_in_log_time() -> None:
    log = _Log()
    log("kv_set", 100, k="x", v=1)
    granted = log("lease_grant", 1_000, ttl_ms=5_000)
    assert granted == {"ok": True, "id": 2, "ttl_ms": 5_000, "deadline_ms": 6_000}


def test_grants_batched_in_one_entry_get_distinct_ids() -> None:
    machine = KeyValueStore()
    first = machine.apply(10, {"op": "lease_grant", "args": {"ttl_ms": 1_000}, "ts": 0})
    second = machine.apply(10, {"op": "lease_grant", "args": {"ttl_ms": 2_000}, "ts": 0})
    third = machine.apply(11, {"op": "lease_grant", "args": {"ttl_ms": 3_000}, "ts": 0})
    assert [first["id"], second["id"], third["id"]] == [10, 11, 12]
    restored = KeyValueStore()
    restored.restore(machine.snapshot())
    assert restored.apply(12, {"op": "lease_grant", "args": {"ttl_ms": 1_000}, "ts": 0})["id"] == 13


def test_expiry_before_the_recorded_deadline_in_log_time_is_refused() -> None:
    log = _Log()
    lease = log("lease_grant", 1_000, ttl_ms=5_000)["id"]
    log("kv_set", 1_000, k="a", v=1, lease=lease)
    early = log("lease_expire", 5_999, ids=[lease])
    assert early["expired"] == [] and early["kept"] == [lease]
    assert log.machine.get("a")["found"] is True
    due = log("lease_expire", 6_000, ids=[lease])
    assert due["expired"] == [lease] and log.machine.get("a")["found"] is False
    assert log.machine.lease_table.leases == {}


def test_log_time_never_goes_back_with_a_lagging_leader_clock() -> None:
    """A new leader whose clock is behind stamps smaller ts: log time stays put, so an
    expire it proposes early on its clock cannot cut a lease short."""
    log = _Log()
    lease = log("lease_grant", 10_000, ttl_ms=2_000)["id"]
    log("kv_set", 3_000, k="a", v=1, lease=lease)  # a lagging clock
    assert log.machine.lease_table.log_time == 10_000
    assert log("lease_expire", 5_000, ids=[lease])["kept"] == [lease]


def test_expiry_is_the_same_on_every_replica_at_the_same_index() -> None:
    commands = [
        ("lease_grant", 0, {"ttl_ms": 1_000}),
        ("lease_grant", 10, {"ttl_ms": 3_000}),
        ("kv_set", 20, {"k": "a", "v": 1, "lease": 1}),
        ("kv_set", 30, {"k": "b", "v": 2, "lease": 2}),
        ("kv_set", 40, {"k": "c", "v": 3, "lease": 1}),
        ("lease_expire", 1_500, {"ids": [2, 1]}),
        ("lease_expire", 4_000, {"ids": [2]}),
    ]
    runs = []
    for _ in range(2):
        log = _Log()
        results = [log(op, ts, **args) for op, ts, args in commands]
        runs.append((results, log.machine.snapshot()))
    assert runs[0] == runs[1]
    results, _ = runs[0]
    assert results[5]["expired"] == [1] and results[5]["kept"] == [2]
    assert results[6]["expired"] == [2]


def test_a_put_moves_a_key_between_leases_and_a_put_without_lease_detaches_it() -> None:
    log = _Log()
    one = log("lease_grant", 0, ttl_ms=1_000)["id"]
    two = log("lease_grant", 0, ttl_ms=1_000)["id"]
    log("kv_set", 0, k="k", v=1, lease=one)
    log("kv_set", 0, k="k", v=2, lease=two)
    table = log.machine.lease_table
    assert table.leases[one].keys == set() and table.leases[two].keys == {"k"}
    log("kv_cas", 0, k="k", expected=2, v=3)  # a put without a lease: detached
    assert table.leases[two].keys == set() and "k" not in table.key_lease
    log("kv_set", 0, k="k", v=4, lease=one)
    log("kv_delete", 0, k="k")
    assert table.leases[one].keys == set() and table.key_lease == {}


def test_a_put_naming_an_unknown_lease_changes_nothing() -> None:
    log = _Log()
    refused = log("kv_set", 0, k="k", v=1, lease=99)
    assert refused["ok"] is False and refused["code"] == "LEASE_NOT_FOUND"
    assert log.machine.get("k")["found"] is False


def test_txn_puts_attach_keys_and_an_unknown_lease_refuses_the_whole_txn() -> None:
    log = _Log()
    lease = log("lease_grant", 0, ttl_ms=1_000)["id"]
    then = [
        {"type": "put", "key": "a", "value": 1, "lease": lease},
        {"type": "put", "key": "b", "value": 2},
    ]
    assert log("kv_txn", 0, then=then)["succeeded"] is True
    assert log.machine.lease_table.leases[lease].keys == {"a"}
    bad = [
        {"type": "put", "key": "c", "value": 1},
        {"type": "put", "key": "d", "value": 1, "lease": 77},
    ]
    refused = log("kv_txn", 0, then=bad)
    assert refused["ok"] is False and refused["code"] == "LEASE_NOT_FOUND"
    assert log.machine.get("c")["found"] is False


def test_revoke_deletes_its_keys_in_the_same_entry_only_within_the_prefix() -> None:
    log = _Log()
    lease = log("lease_grant", 0, ttl_ms=60_000)["id"]
    log("kv_set", 0, k="app/a", v=1, lease=lease)
    log("kv_set", 0, k="sys/b", v=1, lease=lease)
    scoped = log("lease_revoke", 0, id=lease, within="app/")
    assert scoped["ok"] is False and scoped["code"] == "FORBIDDEN" and scoped["key"] == "sys/b"
    assert log.machine.get("app/a")["found"] and log.machine.get("sys/b")["found"]
    whole = log("lease_revoke", 0, id=lease, within="")
    assert whole == {"ok": True, "revoked": True, "id": lease, "keys": ["app/a", "sys/b"]}
    index = log.index
    assert log.machine.get("app/a")["found"] is False
    assert list(log.machine._tombstones)[-2:] == [(index, "app/a"), (index, "sys/b")]
    assert log("lease_revoke", 0, id=lease)["code"] == "LEASE_NOT_FOUND"


def test_lease_limits_refuse_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "LEASES_MAX", 1)
    monkeypatch.setattr(limits, "LEASE_KEYS_MAX", 1)
    log = _Log()
    lease = log("lease_grant", 0, ttl_ms=1_000)["id"]
    assert log("lease_grant", 0, ttl_ms=1_000)["code"] == "LEASE_LIMIT"
    log("kv_set", 0, k="a", v=1, lease=lease)
    assert log("kv_set", 0, k="b", v=1, lease=lease)["code"] == "LEASE_LIMIT"
    assert log("kv_set", 0, k="a", v=2, lease=lease)["ok"] is True  # already attached
    assert log.machine.get("b")["found"] is False


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("lease_grant", {"ttl_ms": 5}),
        ("lease_grant", {"ttl_ms": "10"}),
        ("lease_expire", {"ids": "1"}),
        ("lease_expire", {"ids": [0]}),
        ("lease_revoke", {"id": True}),
    ],
)
def test_bad_lease_commands_give_an_error_result_and_change_nothing(
    op: str, args: dict[str, Any]
) -> None:
    log = _Log()
    log("lease_grant", 100, ttl_ms=1_000)
    before = log.machine.snapshot()
    result = log(op, 50_000, **args)
    assert result["ok"] is False and result["code"] == "BAD_REQUEST"
    assert log.machine.snapshot() == before


def test_snapshot_carries_leases_and_restores_identically() -> None:
    log = _Log()
    lease = log("lease_grant", 1_000, ttl_ms=2_000)["id"]
    log("kv_set", 1_100, k="b", v=1, lease=lease)
    log("kv_set", 1_200, k="a", v=1, lease=lease)
    snap = log.machine.snapshot()
    data = json.loads(snap)
    assert data["format"] == 3 and data["log_time"] == 1_200
    assert data["leases"] == [[lease, 2_000, 3_000, ["a", "b"]]]
    assert drain(log.machine.snapshot_steps(slice_items=1)) == snap
    other = KeyValueStore()
    other.restore(snap)
    assert other.snapshot() == snap and other.lease_table.key_lease == {"a": lease, "b": lease}
    assert _Log(other)("lease_expire", 3_000, ids=[lease]) == log(
        "lease_expire", 3_000, ids=[lease]
    )


def test_a_snapshots_leases_are_read_in_its_steps_and_put_in_place_only_at_the_end() -> None:
    source = _Log()
    lease = source("lease_grant", 1_000, ttl_ms=2_000)["id"]
    source("kv_set", 1_100, k="a", v=1, lease=lease)
    target = _Log()
    own = target("lease_grant", 500, ttl_ms=9_000)["id"]
    target("kv_set", 600, k="mine", v=1, lease=own)
    table = target.machine.lease_table
    before = (dict(table.key_lease), table.log_time, table.last_id, table.epoch)
    steps = target.machine.restore_steps(source.machine.snapshot())
    while True:
        try:
            next(steps)
        except StopIteration as done:
            replace = done.value
            break
        assert (dict(table.key_lease), table.log_time, table.last_id, table.epoch) == before
    replace()
    assert table.key_lease == {"a": lease} and table.log_time == 1_100
    assert table.epoch == before[3] + 1  # the keeper sees a changed table
    assert target.machine.snapshot() == source.machine.snapshot()


def test_a_format_2_snapshot_restores_with_no_leases_and_unknown_formats_are_refused() -> None:
    old = {"format": 2, "items": [["a", 1, 1, 1, 1]], "index": 1, "tombstones": [], "forgotten": 0}
    machine = KeyValueStore()
    machine.restore(json.dumps(old).encode())
    assert machine.get("a")["found"] and machine.lease_table.leases == {}
    with pytest.raises(StorageCorruption, match="unknown key-value format 4"):
        machine.restore(json.dumps({**old, "format": 4}).encode())
