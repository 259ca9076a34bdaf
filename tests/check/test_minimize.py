"""The counterexample minimizer: small, honest, still failing."""

from __future__ import annotations

from collections.abc import Sequence

from resonetics.check.history import HistoryRecorder, Operation
from resonetics.check.linearizability import Verdict, check_history, search
from resonetics.check.minimize import minimize_violation
from tests.check.transcript import ops


def _fails(history: Sequence[Operation]) -> bool:
    return search(history).verdict is Verdict.NOT_LINEARIZABLE


def _explain(history: list[Operation]) -> list[str]:
    [bad] = check_history(history).violations
    return [op.describe().split(maxsplit=2)[2] for op in bad.counterexample]


def test_stale_read_in_a_long_history_shrinks_to_the_three_operations_involved() -> None:
    recorder = HistoryRecorder()
    for i in range(60):
        write = recorder.invoke(0, "set", "k", i)
        recorder.ok(write)
        read = recorder.invoke(1, "get", "k")
        recorder.ok(read, i)
    stale = recorder.invoke(2, "get", "k")
    recorder.ok(stale, 30)
    for i in range(60, 80):  # history after the violation is cut away
        write = recorder.invoke(0, "set", "k", i)
        recorder.ok(write)
    explanation = _explain(recorder.operations())
    assert explanation[0] == "set 30"
    assert explanation[-1] == "get -> 30"
    assert len(explanation) == 3
    assert explanation[1].startswith("set ") and explanation[1] != "set 30"


def test_read_of_a_never_written_value_shrinks_to_the_read_alone() -> None:
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get 1
        0 invoke set 2
        1 invoke get
        1 ok     get 9
        0 ok     set 2
        """)
    assert _explain(history) == ["get -> 9"]


def test_written_values_a_remaining_read_saw_are_not_removed() -> None:
    # Removing "set 1" would also fail ("get -> 1" of a value never written), but it
    # would misstate the problem: 1 was written, the read is stale.
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        0 invoke set 2
        0 ok     set 2
        1 invoke get
        1 ok     get 1
        """)
    assert _explain(history) == ["set 1", "set 2", "get -> 1"]


def test_double_applied_cas_keeps_both_cas_and_what_they_expected() -> None:
    history = ops("""
        0 invoke set 0
        0 ok     set 0
        3 invoke get
        3 ok     get 0
        1 invoke cas [0,1]
        2 invoke cas [0,1]
        1 ok     cas [0,1]
        2 ok     cas [0,1]
        """)
    assert _explain(history) == ["set 0", "cas 0 -> 1 ok", "cas 0 -> 1 ok"]


def test_explanation_shows_operations_as_they_really_completed() -> None:
    # The prefix cut treats the write still in flight at the bad read as pending;
    # the explanation reports it with its real completion line.
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        2 invoke set 2
        1 invoke get
        1 ok     get 3
        2 ok     set 2
        """)
    [bad] = check_history(history).violations
    assert all(op in history for op in bad.counterexample)


def test_minimized_set_is_a_failing_subset_in_call_order() -> None:
    history = ops("""
        0 invoke set 1
        1 invoke set 2
        0 ok     set 1
        1 ok     set 2
        2 invoke get
        2 ok     get 1
        3 invoke get
        3 ok     get 2
        2 invoke get
        2 ok     get 1
        """)
    small = minimize_violation(history, _fails)
    assert _fails(small)
    assert set(small) <= set(history)
    assert [op.call for op in small] == sorted(op.call for op in small)
    assert len(small) < len(history)


def test_a_spent_budget_still_returns_a_failing_history() -> None:
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        0 invoke set 2
        0 ok     set 2
        1 invoke get
        1 ok     get 1
        1 invoke get
        1 ok     get 2
        """)
    for checks in range(6):
        small = minimize_violation(history, _fails, checks_max=checks)
        assert _fails(small)
    assert len(minimize_violation(history, _fails, checks_max=0)) == len(history)


def test_read_from_the_future_shows_the_later_write() -> None:
    history = ops("""
        0 invoke set 1
        0 ok     set 1
        1 invoke get
        1 ok     get 2
        1 invoke get
        1 ok     get 1
        0 invoke set 2
        0 ok     set 2
        """)
    assert _explain(history) == ["get -> 2", "set 2"]
