"""The search against a brute-force oracle on small arbitrary histories (STYLE habit 11).

The oracle tries every order of the operations that respects real time, with
every subset of the pending ones left out, on its own, separately written
register. Histories are random, so both verdicts occur often.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.check.history import Operation, OpKind
from resonetics.check.linearizability import Verdict, search

VALUES = st.sampled_from([None, 1, 2])


def _legal(state: Any, op: Operation) -> tuple[bool, Any]:
    same = json.dumps(state, sort_keys=True) if state is not None else None
    if op.f == "set":
        return True, op.input
    if op.f == "get":
        return (
            json.dumps(op.output, sort_keys=True) if op.output is not None else None
        ) == same, state
    if op.f == "delete":
        if op.deleted is None:
            return True, None
        return op.deleted == (state is not None), None
    expected, new = op.input
    hit = state == expected
    if op.pending:
        return True, new if hit else state
    return (hit if op.success else not hit), (new if hit and op.success else state)


def brute_force(ops: list[Operation]) -> bool:
    def go(state: Any, left: frozenset[int]) -> bool:
        if all(ops[i].pending for i in left):
            return True
        earliest_return = min(ops[i].ret for i in left)
        for i in left:
            if ops[i].call > earliest_return:
                continue  # someone still waiting returned before this op was called
            ok, after = _legal(state, ops[i])
            if ok and go(after, left - {i}):
                return True
        return False

    return go(None, frozenset(range(len(ops))))


@st.composite
def histories(draw: st.DrawFn) -> list[Operation]:
    count = draw(st.integers(min_value=1, max_value=6))
    tokens = [(i, "call") for i in range(count)] + [(i, "ret") for i in range(count)]
    order = draw(st.permutations(tokens))
    calls: dict[int, int] = {}
    rets: dict[int, int] = {}
    for position, (i, what) in enumerate(order):
        (calls if what == "call" else rets)[i] = position
    ops: list[Operation] = []
    for i in range(count):
        call, ret = sorted((calls[i], rets[i]))
        pending = draw(st.booleans()) and draw(st.booleans())
        f: OpKind = draw(st.sampled_from(["set", "get", "delete", "cas"]))
        value_in: Any = None
        if f == "set":
            value_in = draw(VALUES)
        elif f == "cas":
            value_in = [draw(VALUES), draw(VALUES)]
        ops.append(
            Operation(
                id=i,
                process=i,
                f=f,
                key="k",
                call=call,
                ret=math.inf if pending else ret,
                input=value_in,
                output=draw(VALUES) if f == "get" and not pending else None,
                success=draw(st.booleans()) if f == "cas" and not pending else None,
                deleted=draw(st.sampled_from([None, True, False]))
                if f == "delete" and not pending
                else None,
            )
        )
    return ops


@settings(max_examples=400, deadline=None)
@given(histories())
def test_search_agrees_with_brute_force(ops: list[Operation]) -> None:
    expected = Verdict.LINEARIZABLE if brute_force(ops) else Verdict.NOT_LINEARIZABLE
    assert search(ops).verdict is expected
