"""The model-based linearizability check (``check/model.py``) on small histories."""

from __future__ import annotations

import math

from resonetics.check.model import MachineOperation as Op
from resonetics.check.model import ModelVerdict, check_model
from resonetics.machine.structures import Counter, Set


def test_concurrent_increments_in_either_order_are_linearizable() -> None:
    ops = [
        Op(0, "incr", {"by": 1}, 0, 5, 3, True),  # took effect second
        Op(1, "incr", {"by": 2}, 1, 6, 2, True),
        Op(2, "get", {}, 7, 8, 3, True),
    ]
    assert check_model(ops, Counter.model, steps_max=1000).verdict is ModelVerdict.OK


def test_read_missing_an_acknowledged_increment_is_not_linearizable() -> None:
    ops = [Op(0, "incr", {"by": 1}, 0, 5, 1, True), Op(1, "get", {}, 6, 8, 0, True)]
    checked = check_model(ops, Counter.model, steps_max=1000)
    assert checked.verdict is ModelVerdict.NOT_LINEARIZABLE
    assert [o.op for o in checked.stuck] == ["get"]


def test_unknown_outcome_may_have_taken_effect_or_not() -> None:
    pending = Op(0, "incr", {"by": 1}, 0, math.inf)
    for seen in (0, 1):
        ops = [pending, Op(1, "get", {}, 6, 8, seen, True)]
        assert check_model(ops, Counter.model, steps_max=1000).verdict is ModelVerdict.OK


def test_operation_cannot_take_effect_before_it_was_invoked() -> None:
    ops = [
        Op(1, "contains", {"item": "a"}, 0, 1, True, True),
        Op(0, "add", {"item": "a"}, 2, 3, True, True),
    ]
    assert check_model(ops, Set.model, steps_max=1000).verdict is ModelVerdict.NOT_LINEARIZABLE


def test_spent_budget_is_unknown_never_a_pass() -> None:
    ops = [Op(i, "incr", {"by": 1}, 0, 100, i + 1, True) for i in range(12)]
    ops.append(Op(99, "get", {}, 101, 102, 0, True))
    assert check_model(ops, Counter.model, steps_max=50).verdict is ModelVerdict.UNKNOWN
