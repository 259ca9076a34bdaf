"""bench/apply_cost.py measures successful writes, in both shapes and both forms."""

from __future__ import annotations

import pytest
from bench.apply_cost import chain

from resonetics.machine.replicated import ReplicatedKV


@pytest.mark.parametrize("shape", ["legacy", "sequenced"])
def test_every_command_of_the_chain_is_applied_as_a_new_write(shape: str) -> None:
    """A chain whose commands were refused (a session expired, an ack past a seq) or
    answered from the dedup table would time the wrong path."""
    snapshots = []
    for packed in (True, False):
        machine = ReplicatedKV()
        parts = []
        for entry in chain(shape, 256, packed):
            applied = machine.apply(entry)
            parts.extend(applied.parts or (applied,))
        writes = [p for p in parts if p.result.get("session") is None]
        assert len(writes) == 256
        assert all(p.code == "OK" and p.result["ok"] and not p.dedup for p in writes)
        assert machine.read("kv_get", {"k": "key-0000255"})["found"]
        snapshots.append(machine.snapshot())
    assert snapshots[0] == snapshots[1]  # packed and decoded chains reach one state
