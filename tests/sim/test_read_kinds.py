"""The simulator's clients issue every read kind; stale reads are held to committed history."""

from __future__ import annotations

from typing import Any

import pytest

from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.outcome import Outcome
from resonetics.sim import SimOptions, parse_faults, run_seed
from resonetics.sim.stale_reads import StaleReadOracle


def _entries(commands: list[dict[str, Any]]) -> list[Entry]:
    out, prev = [], GENESIS.hash
    for i, args in enumerate(commands, start=1):
        data = {"client_id": "c", "request_id": str(i), "ts": i, **args}
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        prev = entry.hash
        out.append(entry)
    return out


def test_oracle_knows_each_keys_value_at_every_index() -> None:
    oracle = StaleReadOracle()
    for entry in _entries(
        [
            {"op": "kv_set", "args": {"k": "a", "v": 1}},
            {"op": "kv_set", "args": {"k": "b", "v": 2}},
            {"op": "kv_cas", "args": {"k": "a", "expected": 1, "v": 3}},
            {"op": "kv_delete", "args": {"k": "a"}},
        ]
    ):
        oracle.observe(entry)
    assert oracle.expected("a", 0) == (False, None)
    assert oracle.expected("a", 2) == (True, 1)
    assert oracle.expected("a", 3) == (True, 3)
    assert oracle.expected("a", 4) == (False, None)
    assert oracle.check("a", {"applied_index": 3, "found": True, "value": 3}) is None
    problem = oracle.check("a", {"applied_index": 4, "found": True, "value": 3})
    assert problem is not None and "committed history" in problem
    beyond = oracle.check("b", {"applied_index": 9, "found": True, "value": 2})
    assert beyond is not None and "beyond" in beyond


def test_stale_reads_that_lie_about_their_index_are_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node that claims a later applied index than the state it answered from."""

    def lying(self: NodeDriver, op: str, args: dict[str, Any]) -> Outcome:
        result = dict(self.machine.read(op, args))
        result["applied_index"] = max(0, self.core.applied - 6)
        result["commit_index"] = self.core.commit_index
        return Outcome("OK", result)

    monkeypatch.setattr(NodeDriver, "read_stale", lying)
    failures = [run_seed(seed, SimOptions(faults=parse_faults("none"))) for seed in range(4)]
    assert any(r.failure is not None and "stale read" in r.failure for r in failures)


def test_runs_with_every_read_kind_pass() -> None:
    for seed in (5, 6):
        result = run_seed(seed, SimOptions(faults=parse_faults("partition,delay,crash")))
        result.raise_for_failure()
