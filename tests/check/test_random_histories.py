"""The checker against histories of a real (simulated) concurrent register.

Every simulated history must pass; the same history with one read changed to a
value that could not have been seen must fail, on that read's key, with that
read in the counterexample.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.check.history import parse_history
from resonetics.check.linearizability import Verdict, check_history, search
from tests.check.register_sim import simulate

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def _ok_reads(events: list[dict[str, Any]]) -> list[int]:
    return [i for i, e in enumerate(events) if e["type"] == "ok" and e["f"] == "get"]


def _check(events: list[dict[str, Any]]) -> Any:
    lines = [json.dumps(e) for e in events]
    return check_history(parse_history(lines))


# Derandomized: the same seeds every run, so the suite's duration does not vary by luck.
@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=SEEDS)
def test_simulated_register_histories_are_linearizable(seed: int) -> None:
    recorder = simulate(seed)
    result = check_history(recorder.operations())
    assert result.verdict is Verdict.LINEARIZABLE, [k.counterexample for k in result.keys]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=SEEDS)
def test_read_of_a_never_written_value_is_caught(seed: int) -> None:
    events = simulate(seed).events()
    reads = _ok_reads(events)
    index = random.Random(seed).choice(reads)
    events[index]["value"] = {"w": -1}
    _assert_caught(events, index)
    # The checker answers this one by a fast path; the search must agree on its own.
    key = events[index]["key"]
    history = [op for op in parse_history(json.dumps(e) for e in events) if op.key == key]
    assert search(history).verdict is Verdict.NOT_LINEARIZABLE


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=SEEDS)
def test_read_from_the_future_is_caught(seed: int) -> None:
    """A read returning a value whose write was invoked only after the read returned."""
    events = simulate(seed).events()
    candidates = []
    for index in _ok_reads(events):
        key = events[index]["key"]
        later = [
            e["value"] if e["f"] == "set" else e["value"][1]
            for e in events[index + 1 :]
            if e["type"] == "invoke" and e["key"] == key and e["f"] in ("set", "cas")
        ]
        if later:
            candidates.append((index, later[0]))
    assert candidates, "the workload always writes after some read"
    index, value = random.Random(seed).choice(candidates)
    events[index]["value"] = value
    _assert_caught(events, index)


def _assert_caught(events: list[dict[str, Any]], index: int) -> None:
    result = _check(events)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    [bad] = result.violations
    assert bad.key == events[index]["key"]
    # The corrupted read's completion is line index + 1; it is in the explanation,
    # and the explanation is itself a failing history.
    assert index + 1 in {op.ret for op in bad.counterexample}
    assert check_history(list(bad.counterexample)).verdict is Verdict.NOT_LINEARIZABLE


def test_thousands_of_operations_on_one_key_are_checked_within_budget() -> None:
    recorder = simulate(7, ops=4000, clients=6, keys=("hot",))
    history = recorder.operations()
    assert len(history) > 3000
    result = check_history(history)
    assert result.verdict is Verdict.LINEARIZABLE
    assert result.keys[0].steps < 1_000_000  # about 350k; the budget is 2M
