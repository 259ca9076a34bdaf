"""Shrinking a non-linearizable single-key history to a small explanation.

Theory of operation
-------------------
A violation found in thousands of operations is useless to a reader; the few
operations that cannot be ordered are what matter. We shrink in two stages,
asking a ``fails`` oracle (the linearizability search) after every change:

1. **Prefix cut** (binary search). Cutting the history at a line and turning
   the operations still in flight there into pending ones (outcome unknown)
   only *weakens* it: a linearizable history's prefixes stay linearizable. So
   "this prefix fails" is monotone in the cut, and the shortest failing prefix
   is found in log2(n) checks.
2. **Greedy removal** (chunks, then one at a time, ddmin-like). Removing an
   observation (a get, a cas that saw another value) also only weakens, so any
   failure left is real. Removing a *write* could invent a new failure ("read
   of a never-written value" where the value was in fact written), so a write is
   removed only if no remaining operation refers to the value it wrote.

The result is reported with the operations as they really completed: if a
weakened set fails, the same operations with their real outcomes fail too.
The number of oracle calls is bounded (``MINIMIZE_CHECKS_MAX``); when the budget
runs out, the current (larger, still failing) set is returned.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from resonetics.check.history import Operation, canonical
from resonetics.limits import MINIMIZE_CHECKS_MAX

__all__ = ["minimize_violation"]

Oracle = Callable[[Sequence[Operation]], bool]


class _Budget:
    """Counts oracle calls; the minimizer stops asking once it is spent."""

    def __init__(self, fails: Oracle, checks_max: int) -> None:
        self._fails = fails
        self.left = checks_max

    def fails(self, ops: Sequence[Operation]) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return self._fails(ops)


def minimize_violation(
    ops: Sequence[Operation], fails: Oracle, *, checks_max: int = MINIMIZE_CHECKS_MAX
) -> tuple[Operation, ...]:
    """A small subset of ``ops`` (one key) that still fails, in call order."""
    budget = _Budget(fails, checks_max)
    current = _shortest_failing_prefix(sorted(ops, key=lambda op: op.call), budget)
    current = _without_delete_flags(current, budget)
    # Latest first, so that a chain of writes (set a; cas a->b; cas b->c) unwinds in one
    # pass; pending writes first, because each one can double the cost of every check.
    newest_first = current[::-1]
    current = _drop_chunks(current, [op for op in newest_first if op.pending], budget)
    current = _drop_chunks(current, [op for op in newest_first if _is_observation(op)], budget)
    current = _drop_chunks(current, current[::-1], budget)
    original = {op.id: op for op in ops}
    return tuple(original[op.id] for op in current)


def _prefix(ops: Sequence[Operation], cut: float) -> list[Operation]:
    """Operations called by ``cut``; those completing later become pending.

    A write called after the cut stays too (as pending, so it changes nothing
    before the cut) when a kept operation saw the value it writes: "read from
    the future" then shows the future write, not a value seemingly never written.
    """
    kept: list[Operation] = []
    later: list[Operation] = []
    for op in ops:
        if op.call > cut:
            later.append(op)
        elif op.ret <= cut:
            kept.append(op)
        elif op.f != "get":  # a pending get has no effect and no output: drop it
            kept.append(_as_pending(op))
    seen = {_observed(op) for op in kept if op.f == "get" and not op.pending}
    seen |= {canonical(op.input[0]) for op in kept if op.f == "cas"}
    kept += [_as_pending(op) for op in later if op.f in ("set", "cas") and _written(op) in seen]
    return kept


def _as_pending(op: Operation) -> Operation:
    return dataclasses.replace(op, ret=math.inf, success=None, deleted=None)


def _without_delete_flags(ops: list[Operation], budget: _Budget) -> list[Operation]:
    """Forget what deletes reported (a weakening), if the history still fails without it.

    A delete that reported whether it deleted refers to every write, which would
    otherwise keep every write in the explanation.
    """
    if all(op.deleted is None for op in ops):
        return ops
    weaker = [dataclasses.replace(op, deleted=None) if op.f == "delete" else op for op in ops]
    return weaker if budget.fails(weaker) else ops


def _shortest_failing_prefix(ops: Sequence[Operation], budget: _Budget) -> list[Operation]:
    cuts = sorted({op.ret for op in ops if not op.pending})
    low, high = 0, len(cuts) - 1  # invariant: the prefix at cuts[high] fails (or is all)
    best = list(ops)
    while low <= high:
        middle = (low + high) // 2
        candidate = _prefix(ops, cuts[middle])
        if budget.fails(candidate):
            best, high = candidate, middle - 1
        else:
            low = middle + 1
    return best


def _drop_chunks(
    current: list[Operation], candidates: Sequence[Operation], budget: _Budget
) -> list[Operation]:
    """Try removing chunks of ``candidates`` (halving sizes), keeping every failing removal."""
    pool = list(candidates)
    size = max(1, len(pool) // 2)
    while pool and budget.left > 0:
        start, removed_any = 0, False
        while start < len(pool) and budget.left > 0:
            chunk = {op.id for op in pool[start : start + size]}
            rest = [op for op in current if op.id not in chunk]
            if _may_remove(current, chunk, rest) and budget.fails(rest):
                current, removed_any = rest, True
                pool = pool[:start] + pool[start + size :]
            else:
                start += size
        if size == 1 and not removed_any:
            break
        size = max(1, size // 2)
    return current


def _is_observation(op: Operation) -> bool:
    """True for operations that only look at the register (removing them only weakens)."""
    return op.f == "get" or (op.f == "cas" and op.success is False)


def _may_remove(current: Sequence[Operation], chunk: set[int], rest: Sequence[Operation]) -> bool:
    """Removing writes is allowed only if no remaining operation refers to what they wrote."""
    written = {_written(op) for op in current if op.id in chunk and not _is_observation(op)}
    if not written:
        return True
    return not any(_refers(op, written) for op in rest)


def _written(op: Operation) -> str | None:
    if op.f == "set":
        return canonical(op.input)
    if op.f == "cas":
        return canonical(op.input[1])
    return None  # delete


def _observed(op: Operation) -> str | None:
    return canonical(op.output)


def _refers(op: Operation, values: set[str | None]) -> bool:
    if op.f == "get":
        return not op.pending and _observed(op) in values
    if op.f == "cas":
        return canonical(op.input[0]) in values
    # A delete that reports whether it deleted observed presence: any write may matter.
    return op.f == "delete" and op.deleted is not None
