"""Snapshots taken a slice at a time are the state at their first step, byte for byte."""

from __future__ import annotations

import pytest

from resonetics.machine import replicated
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ReplicatedKV
from resonetics.machine.sessions import SNAPSHOT_SLICE_CLIENTS
from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.steps import run_to_end as drain


def test_sliced_kv_snapshot_equals_the_one_shot_snapshot() -> None:
    kv = KeyValueStore()
    for i in range(2_345):
        kv.set(f"k{i:05d}", {"n": i, "s": "x" * (i % 7)})
    assert drain(kv.snapshot_steps(slice_items=100)) == kv.snapshot()
    assert drain(KeyValueStore().snapshot_steps()) == KeyValueStore().snapshot()


def test_writes_after_the_first_step_do_not_leak_into_the_snapshot() -> None:
    kv = KeyValueStore()
    for i in range(500):
        kv.set(f"k{i:03d}", i)
    expected = kv.snapshot()
    steps = kv.snapshot_steps(slice_items=50)
    next(steps)  # the state is fixed here
    kv.set("k000", "changed")
    kv.set("zzz", "new")
    kv.delete("k499")
    assert drain(steps) == expected


def test_replicated_snapshot_steps_match_snapshot_and_ignore_later_applies() -> None:
    machine = ReplicatedKV()
    prev = GENESIS.hash
    for i in range(1, 300):
        data = {
            "client_id": f"c{i % 3}",
            "request_id": str(i),
            "op": "kv_set",
            "args": {"k": f"k{i}", "v": i},
            "ts": 1000 + i,
        }
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        prev = entry.hash
        machine.apply(entry)
    expected = machine.snapshot()
    steps = machine.snapshot_steps()
    next(steps)
    later = make_entry(
        prev,
        1,
        300,
        EntryType.CLIENT_CMD,
        {
            "client_id": "c9",
            "request_id": "x",
            "op": "kv_set",
            "args": {"k": "late", "v": 1},
            "ts": 5,
        },
    )
    machine.apply(later)
    assert drain(steps) == expected
    restored = ReplicatedKV()
    restored.restore(expected)
    assert restored.snapshot() == expected


def test_session_changes_after_the_first_step_do_not_leak_into_the_snapshot() -> None:
    """The sessions are fixed at the first step too: acknowledgements that discard
    results, a session replaced by a new ``session_open``, expiry by log time and a
    dedup hit's touch, all applied while the snapshot is being encoded, stay out."""
    machine = ReplicatedKV()
    prev = GENESIS.hash
    index = 0

    def apply(data: dict[str, object]) -> None:
        nonlocal prev, index
        index += 1
        entry = make_entry(prev, 1, index, EntryType.CLIENT_CMD, data)
        prev = entry.hash
        machine.apply(entry)

    def write(client: str, session: int, seq: int, ack_below: int, ts: int) -> None:
        apply(
            {
                "client_id": client,
                "request_id": f"{client}-{seq}",
                "op": "kv_set",
                "args": {"k": f"{client}{seq}", "v": seq},
                "session": session,
                "seq": seq,
                "ack_below": ack_below,
                "ts": ts,
            }
        )

    for client in ("a", "b"):
        apply(
            {"client_id": client, "request_id": "open", "op": "session_open", "args": {}, "ts": 10}
        )
    for seq in range(1, 6):
        write("a", 1, seq, 1, 100 + seq)
        write("b", 2, seq, 1, 100 + seq)
    expected = machine.snapshot()
    steps = machine.snapshot_steps()
    next(steps)  # the state is fixed here
    write("a", 1, 6, 5, 200)  # acknowledges 1..4: their results go
    write("a", 1, 6, 5, 201)  # a retry: a dedup hit touches the session
    apply({"client_id": "b", "request_id": "open2", "op": "session_open", "args": {}, "ts": 300})
    apply(
        {
            "client_id": "c",
            "request_id": "open",
            "op": "session_open",
            "args": {},
            "ts": 300 + machine.sessions.expiry_ms + 1,  # a and b expire
        }
    )
    assert len(machine.sessions) == 1 and machine.snapshot() != expected
    assert drain(steps) == expected


def _turns_and_bytes(machine: ReplicatedKV) -> tuple[int, bytes]:
    steps = machine.snapshot_steps()
    turns = 0
    try:
        while True:
            next(steps)
            turns += 1
    except StopIteration as done:
        return turns, done.value


def test_a_replicated_state_of_several_machine_slices_is_assembled_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The machine's bytes span several copy slices: they are written into one buffer
    handed over at the end, after the JSON line, and the result is still the one-shot
    encoding."""
    monkeypatch.setattr(replicated, "_MACHINE_SLICE_BYTES", 1_000_000)
    machine = ReplicatedKV()
    prev = GENESIS.hash
    for i in range(1, 4_001):
        data = {
            "client_id": "c",
            "request_id": str(i),
            "op": "kv_set",
            "args": {"k": f"k{i:05d}", "v": "v" * 1_000},
            "ts": 1000 + i,
        }
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        prev = entry.hash
        machine.apply(entry)
    expected = machine.snapshot()
    assert len(expected) > 4 * 1_000_000
    with_slices = _turns_and_bytes(machine)[0]
    monkeypatch.setattr(replicated, "_MACHINE_SLICE_BYTES", 1 << 30)
    turns, document = _turns_and_bytes(machine)
    assert document == expected
    assert with_slices >= turns + 3  # a step between each two copy slices
    rest = document.split(b"\n", 1)[1]
    assert rest == machine.machine.snapshot()  # the machine's bytes as they are


def test_a_remembered_result_holding_the_heads_field_names_is_assembled_byte_for_byte() -> None:
    """A remembered result (in ``sessions``) and the store's values hold the names of the
    head's fields, ``sessions`` with the placeholder's value among them: the sessions go
    in the head's last field all the same, and the state restores."""
    machine = ReplicatedKV()
    prev = GENESIS.hash
    for i in range(1, 40):
        data = {
            "client_id": f"c{i % 3}",
            "request_id": str(i),
            "op": "kv_cas",  # its result, remembered in sessions, holds the value
            "args": {"k": f"k{i}", "expected": None, "v": {"sessions": 0, "machine_bytes": ""}},
            "ts": 1000 + i,
        }
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        prev = entry.hash
        machine.apply(entry)
    one_shot = machine.snapshot()
    assert one_shot.count(b'"sessions":0') == 2 * 39  # in the results and the values
    assert drain(machine.snapshot_steps()) == one_shot
    other = ReplicatedKV()
    other.restore(one_shot)
    assert other.state_digest() == machine.state_digest()


def test_a_session_table_of_several_slices_is_assembled_byte_for_byte() -> None:
    """More clients than one slice holds: the table goes a slice per step after the
    machine's bytes (one more step between each two), and the document is still the
    one-shot encoding."""
    clients = 2 * SNAPSHOT_SLICE_CLIENTS + 7  # three slices

    def machine_of(client_ids: int) -> ReplicatedKV:
        machine = ReplicatedKV()
        prev = GENESIS.hash
        for i in range(1, clients + 1):
            data = {
                "client_id": f"c{i % client_ids:05d}",
                "request_id": f"r{i}",
                "op": "kv_set",
                "args": {"k": f"k{i % 10}", "v": i},
                "ts": 1000,
            }
            entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
            prev = entry.hash
            machine.apply(entry)
        return machine

    many, one = machine_of(clients), machine_of(1)
    assert len(many.sessions) == clients
    turns, document = _turns_and_bytes(many)
    assert document == many.snapshot()
    assert turns == _turns_and_bytes(one)[0] + 2  # the same store; two steps between slices
    restored = ReplicatedKV()
    restored.restore(document)
    assert restored.sessions.to_data() == many.sessions.to_data()
