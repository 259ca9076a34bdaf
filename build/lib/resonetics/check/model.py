"""Linearizability of a served machine's history against the machine's own model.

Theory of operation
-------------------
``check/linearizability.py`` checks key-value histories key by key against a
register. A user's machine is one object with its own semantics, so its history
is checked as a whole against a *model* the machine declares: a pure function
``model(state, op, args) -> (state, result)`` (``state`` None is the initial
state; states and results are JSON values, compared by canonical JSON).

The search is Wing & Gong's with Lowe's memoization, as in the register
checker: an operation may be linearized next if it was invoked before every
not-yet-linearized operation's return; its model result must equal what the
client was told; a (linearized set, state) pair already explored is not
explored again. Operations whose outcome is unknown (``info``) return at
+infinity and carry no result: they may take effect at any point after their
invoke, or never. The search has a step budget: spending it is UNKNOWN, never
a pass.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

#: ``(state, op, args) -> (state, result)``: the machine's sequential specification.
Model = Callable[[Any, str, dict[str, Any]], tuple[Any, Any]]

_CANONICAL: Final = msgspec.json.Encoder(order="deterministic")


class ModelVerdict(enum.Enum):
    OK = "ok"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown (search budget spent)"


@dataclass(frozen=True, slots=True)
class MachineOperation:
    """One completed (or indeterminate) operation of a client."""

    process: int
    op: str
    args: dict[str, Any]
    call: float
    #: When the answer arrived; ``math.inf`` when the outcome is unknown.
    ret: float = math.inf
    result: Any = None
    known: bool = False

    def describe(self) -> str:
        answer = f"-> {self.result!r}" if self.known else "-> ? (outcome unknown)"
        return f"p{self.process} [{self.call:g}, {self.ret:g}] {self.op} {self.args!r} {answer}"


@dataclass(slots=True)
class ModelCheck:
    verdict: ModelVerdict
    steps: int = 0
    #: For NOT_LINEARIZABLE: the operations that no order could explain (those
    #: pending at the deepest point the search reached).
    stuck: list[MachineOperation] = field(default_factory=list)


def _canon(value: Any) -> bytes:
    return _CANONICAL.encode(value)


def check_model(ops: Sequence[MachineOperation], model: Model, *, steps_max: int) -> ModelCheck:
    """Is ``ops`` linearizable with respect to ``model``? (see the module docstring)"""
    history = sorted(ops, key=lambda o: (o.call, o.ret))
    must = sum(1 << i for i, o in enumerate(history) if o.known)
    results = [_canon(o.result) if o.known else b"" for o in history]
    seen: set[tuple[int, bytes]] = set()
    # Each frame: (linearized mask, state, candidates left to try).
    stack: list[tuple[int, Any, list[int]]] = [(0, None, _candidates(history, 0))]
    steps, deepest, deepest_mask = 0, -1, 0
    while stack:
        mask, state, todo = stack[-1]
        if mask & must == must:
            return ModelCheck(ModelVerdict.OK, steps)
        if not todo:
            stack.pop()
            continue
        i = todo.pop()
        steps += 1
        if steps > steps_max:
            return ModelCheck(ModelVerdict.UNKNOWN, steps)
        op = history[i]
        new_state, result = model(state, op.op, dict(op.args))
        if op.known and _canon(result) != results[i]:
            continue
        new_mask = mask | (1 << i)
        key = (new_mask, _canon(new_state))
        if key in seen:
            continue
        seen.add(key)
        depth = bin(new_mask & must).count("1")
        if depth > deepest:
            deepest, deepest_mask = depth, new_mask
        stack.append((new_mask, new_state, _candidates(history, new_mask)))
    stuck = [o for i, o in enumerate(history) if o.known and not deepest_mask >> i & 1]
    return ModelCheck(ModelVerdict.NOT_LINEARIZABLE, steps, stuck[:8])


def _candidates(history: Sequence[MachineOperation], mask: int) -> list[int]:
    """Operations that may be linearized next: invoked before the earliest return among
    those not yet linearized (tried in history order: the list is popped from its end)."""
    pending = [i for i in range(len(history)) if not mask >> i & 1]
    if not pending:
        return []
    first_ret = min(history[i].ret for i in pending)
    return [i for i in reversed(pending) if history[i].call <= first_ret]


__all__ = ["MachineOperation", "Model", "ModelCheck", "ModelVerdict", "check_model"]
