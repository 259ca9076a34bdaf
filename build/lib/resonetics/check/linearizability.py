"""Linearizability of key-value histories: Wing & Gong's search with Lowe's memoization.

Theory of operation
-------------------
A history is linearizable if every operation can be given one instant between
its invoke and its completion such that the operations, run in that order on a
plain register per key, return what they returned (Herlihy & Wing 1990).
Linearizability is *P-compositional* (Horn & Kroening 2015): a history is
linearizable iff each key's sub-history is, so each key is checked on its own.

For one key we run Wing & Gong's depth-first search over a doubly linked list of
call and return entries in history order, with Lowe's improvement ("Testing for
linearizability", 2017; also porcupine): a (set of linearized operations, register
state) pair already explored is never explored again. Reaching a return entry
whose operation is not yet linearized means the choice made so far is wrong:
backtrack. Operations with an unknown outcome (``info``) have their return at
+infinity; they may take effect at any point after their call, and "never" is
the same as "last", because nothing observes the register after it. Their step
on the register is always legal (a pending cas applies iff the register holds
its expected value), so once only pending operations remain, the search is won.

The search has a step budget (and an optional deadline); spending it gives
UNKNOWN, never a pass. Its cost grows with the number of unresolved ``info``
operations that overlap the point of failure: linearizable histories with
hundreds of them check in about a second, but a violation late in such a
history may come back UNKNOWN (the same limit as Knossos and porcupine).
Values are compared by canonical JSON; an absent key is ``None`` (so writing
JSON null is indistinguishable from deleting, as in the history format).
"""

from __future__ import annotations

import enum
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from resonetics.check import txn_model
from resonetics.check.history import Key, Operation, canonical
from resonetics.check.minimize import minimize_violation
from resonetics.limits import (
    LINEARIZABILITY_STEPS_MAX,
    MINIMIZE_STEPS_MAX,
    MINIMIZE_STEPS_PER_CHECK,
)

__all__ = [
    "CheckResult",
    "KeyResult",
    "SearchResult",
    "Verdict",
    "check_group",
    "check_history",
    "check_key",
    "search",
]


class Verdict(enum.Enum):
    """The answer for one key or a whole history."""

    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict on one key, and for a violation a small failing sub-history."""

    key: Key
    verdict: Verdict
    ops: int
    steps: int
    counterexample: tuple[Operation, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict on a whole history: NOT if any key is, else UNKNOWN if any key is."""

    verdict: Verdict
    keys: tuple[KeyResult, ...]
    ops: int

    @property
    def violations(self) -> tuple[KeyResult, ...]:
        return tuple(k for k in self.keys if k.verdict is Verdict.NOT_LINEARIZABLE)


# --- The register model ------------------------------------------------------------

_State = str | None  # canonical JSON of the value, None when the key is absent


_canon = canonical


@dataclass(frozen=True, slots=True)
class _Step:
    """An operation pre-digested for the model: canonical values, flags."""

    f: str
    pending: bool
    write: _State = None  # set: value; cas: new
    expected: _State = None  # cas: expected
    read: _State = None  # get: value read
    success: bool | None = None  # cas (completed)
    deleted: bool | None = None  # delete (completed, optional)


def _digest(op: Operation) -> _Step:
    if op.f == "cas":
        expected, new = op.input
        return _Step("cas", op.pending, _canon(new), _canon(expected), success=op.success)
    if op.f == "set":
        return _Step("set", op.pending, _canon(op.input))
    if op.f == "get":
        return _Step("get", op.pending, read=_canon(op.output))
    return _Step("delete", op.pending, deleted=op.deleted)


def _apply(state: _State, s: _Step) -> tuple[bool, _State]:
    """One step of the register: (legal, new state)."""
    if s.f == "set":
        return True, s.write
    if s.f == "get":
        return s.read == state, state
    if s.f == "delete":
        legal = s.deleted is None or s.deleted == (state is not None)
        return legal, None
    matches = state == s.expected
    if s.pending:  # unknown outcome: it applies exactly when it would succeed
        return True, s.write if matches else state
    if s.success:
        return matches, s.write
    return not matches, state


# --- The search ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The search's answer on one key, and the steps it spent (a measure of effort)."""

    verdict: Verdict
    steps: int


def search(
    ops: Sequence[Operation],
    *,
    steps_max: int = LINEARIZABILITY_STEPS_MAX,
    deadline: float | None = None,
) -> SearchResult:
    """Is this single-key history linearizable? Wing–Gong search with Lowe's cache.

    ``deadline`` is a ``time.monotonic()`` instant after which the answer is UNKNOWN.
    """
    live = [op for op in ops if not (op.pending and op.f == "get")]  # no effect, no output
    if all(op.pending for op in live):
        return SearchResult(Verdict.LINEARIZABLE, 0)
    return _Search(live).run(steps_max, deadline)


#: How often (in search steps) the search looks at the clock when it has a deadline.
_CLOCK_EVERY_STEPS = 1 << 16


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


class _Search:
    """The linked list of call/return entries and the backtracking loop over it.

    Node 0 is the head sentinel; op ``i`` has call node ``2i+1`` and return node
    ``2i+2``. ``-1`` ends the list.
    """

    def __init__(
        self,
        ops: Sequence[Operation],
        steps: Sequence[Any] | None = None,
        apply: Callable[[Any, Any], tuple[bool, Any]] | None = None,
        initial: Any = None,
    ) -> None:
        # A model other than the one-key register (``check/txn_model.py``) brings its own
        # digested steps (each with ``.pending``), step function and initial state.
        self.steps: Sequence[Any] = [_digest(op) for op in ops] if steps is None else steps
        self.apply = _apply if apply is None else apply
        self.initial = initial
        points: list[tuple[float, int, int]] = []
        for i, op in enumerate(ops):
            points.append((op.call, 0, 2 * i + 1))
            points.append((op.ret, 1 if op.pending else 0, 2 * i + 2))
        points.sort()
        size = 2 * len(ops) + 1
        self.nxt = [-1] * size
        self.prv = [-1] * size
        previous = 0
        for _, _, node in points:
            self.nxt[previous] = node
            self.prv[node] = previous
            previous = node
        self.completed = sum(1 for op in ops if not op.pending)

    def _lift(self, call: int) -> None:
        nxt, prv = self.nxt, self.prv
        nxt[prv[call]] = nxt[call]
        prv[nxt[call]] = prv[call]  # a call always has its return after it
        ret = call + 1
        nxt[prv[ret]] = nxt[ret]
        if nxt[ret] != -1:
            prv[nxt[ret]] = prv[ret]

    def _unlift(self, call: int) -> None:
        nxt, prv = self.nxt, self.prv
        ret = call + 1
        nxt[prv[ret]] = ret
        if nxt[ret] != -1:
            prv[nxt[ret]] = ret
        nxt[prv[call]] = call
        prv[nxt[call]] = call

    def run(self, steps_max: int, deadline: float | None = None) -> SearchResult:
        nxt, steps, apply = self.nxt, self.steps, self.apply
        state: Any = self.initial
        done = pending = 0  # bitsets of linearized operations: completed / pending ones
        remaining = self.completed
        memo = _Memo()
        stack: list[tuple[int, Any]] = []
        node = nxt[0]
        for count in range(1, steps_max + 1):
            if count % _CLOCK_EVERY_STEPS == 0 and _past(deadline):
                return SearchResult(Verdict.UNKNOWN, count)
            if node % 2 == 1:  # a call entry: try to linearize its op here
                op = node // 2
                legal, after = apply(state, steps[op])
                is_pending = steps[op].pending
                new_done = done if is_pending else done | (1 << op)
                new_pending = pending | (1 << op) if is_pending else pending
                if legal and memo.visit(new_done, after, new_pending):
                    stack.append((node, state))
                    state, done, pending = after, new_done, new_pending
                    remaining -= not is_pending
                    if remaining == 0:
                        return SearchResult(Verdict.LINEARIZABLE, count)
                    self._lift(node)
                    node = nxt[0]
                else:
                    node = nxt[node]
                continue
            # A return entry of an op not yet linearized: undo the last choice.
            if not stack:
                return SearchResult(Verdict.NOT_LINEARIZABLE, count)
            node, state = stack.pop()
            op = node // 2
            done &= ~(1 << op)
            pending &= ~(1 << op)
            remaining += not steps[op].pending
            self._unlift(node)
            node = nxt[node]
        return SearchResult(Verdict.UNKNOWN, steps_max)


class _Memo:
    """Configurations already explored (Lowe's cache), with subsumption on pending ops.

    A configuration is (completed ops linearized, register state, pending ops
    linearized). Two with the same first two parts differ only in pending ops,
    which need never be linearized: the one that linearized *fewer* of them has
    every move the other has, and more. So a configuration is skipped when one
    with the same completed set and state, and a subset of its pending set, was
    already entered (it either failed, or is an ancestor still being explored).
    Without this, k unresolved ``info`` writes multiply the search by up to 2^k.
    """

    def __init__(self) -> None:
        self._entered: dict[tuple[int, Any], list[int]] = {}

    def visit(self, done: int, state: Any, pending: int) -> bool:
        """Record a configuration; False if it or a configuration with more options was seen."""
        entered = self._entered.setdefault((done, state), [])
        for earlier in entered:
            if earlier & ~pending == 0:
                return False
        entered.append(pending)
        return True


# --- Per key and per history ---------------------------------------------------------


class _Oracle:
    """The minimizer's question "does this still fail?", within a total step budget.

    UNKNOWN counts as "no", so the minimizer keeps an operation it could not
    judge and its answer stays a certainly failing history.
    """

    def __init__(self, steps_max: int) -> None:
        self.steps_left = steps_max

    def __call__(self, ops: Sequence[Operation]) -> bool:
        if self.steps_left <= 0:
            return False
        result = search(ops, steps_max=min(MINIMIZE_STEPS_PER_CHECK, self.steps_left))
        self.steps_left -= result.steps
        return result.verdict is Verdict.NOT_LINEARIZABLE


def _unwritten_observation(ops: Sequence[Operation]) -> Operation | None:
    """A completed op that saw a value no operation on this key ever wrote, if any.

    A fast path, not a different rule: the search would reach the same verdict,
    but only after trying every order of what came before, which with many
    indeterminate ops can exceed its budget. The op alone is the explanation.
    """
    written = {_canon(op.input) for op in ops if op.f == "set"}
    written |= {_canon(op.input[1]) for op in ops if op.f == "cas"}
    for op in ops:
        if op.pending:
            continue
        if op.f == "get":
            seen = _canon(op.output)
        elif op.f == "cas" and op.success:
            seen = _canon(op.input[0])
        else:
            continue
        if seen is not None and seen not in written:
            return op
    return None


def check_key(
    key: Key,
    ops: Sequence[Operation],
    *,
    steps_max: int = LINEARIZABILITY_STEPS_MAX,
    minimize: bool = True,
    deadline: float | None = None,
) -> KeyResult:
    """Check one key's operations; on a violation, attach a minimized counterexample."""
    impossible = _unwritten_observation(ops)
    if impossible is not None:
        return KeyResult(key, Verdict.NOT_LINEARIZABLE, len(ops), 0, (impossible,))
    result = search(ops, steps_max=steps_max, deadline=deadline)
    example: tuple[Operation, ...] = ()
    if result.verdict is Verdict.NOT_LINEARIZABLE:
        example = minimize_violation(ops, _Oracle(MINIMIZE_STEPS_MAX)) if minimize else tuple(ops)
    return KeyResult(key, result.verdict, len(ops), result.steps, example)


def check_history(
    ops: Sequence[Operation],
    *,
    steps_max: int = LINEARIZABILITY_STEPS_MAX,
    deadline_s: float | None = None,
    minimize: bool = True,
) -> CheckResult:
    """Check every key independently (P-compositionality); keys tied by txns together.

    ``deadline_s`` bounds the wall time of the whole check: a key whose search
    is cut short, or not reached, is UNKNOWN. (Checking is offline, so a real
    clock is fine here; tests bound work with ``steps_max`` instead.)
    """
    tied = txn_model.groups(ops)
    group_of = {k: i for i, group in enumerate(tied) for k in group}
    by_key: dict[Key, list[Operation]] = defaultdict(list)
    by_group: list[list[Operation]] = [[] for _ in tied]
    for op in ops:
        if op.f == "txn":
            by_group[group_of[(txn_model.txn_keys(op) or [op.key])[0]]].append(op)
        elif op.key in group_of:
            by_group[group_of[op.key]].append(op)
        else:
            by_key[op.key].append(op)
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    results: list[KeyResult] = []
    for key in sorted(by_key, key=lambda k: (isinstance(k, str), k)):
        key_ops = by_key[key]
        if _past(deadline):
            results.append(KeyResult(key, Verdict.UNKNOWN, len(key_ops), 0))
            continue
        results.append(
            check_key(key, key_ops, steps_max=steps_max, minimize=minimize, deadline=deadline)
        )
    for group, group_ops in zip(tied, by_group, strict=True):
        results.append(check_group(group, group_ops, steps_max=steps_max, deadline=deadline))
    return CheckResult(_overall(results), tuple(results), len(ops))


def check_group(
    keys: Sequence[Key],
    ops: Sequence[Operation],
    *,
    steps_max: int = LINEARIZABILITY_STEPS_MAX,
    deadline: float | None = None,
) -> KeyResult:
    """Check keys tied together by transactions as one object (``check/txn_model.py``).

    The result is labelled ``k1+k2+...``; a violation's counterexample is the
    group's operations (not minimized: the minimizer knows only registers).
    """
    label = "+".join(str(k) for k in keys)
    if _past(deadline):
        return KeyResult(label, Verdict.UNKNOWN, len(ops), 0)
    live = [op for op in ops if not (op.pending and op.f == "get")]
    if all(op.pending for op in live):
        return KeyResult(label, Verdict.LINEARIZABLE, len(ops), 0)
    slots = {k: i for i, k in enumerate(keys)}
    steps = [txn_model.digest(op, slots) for op in live]
    initial = tuple((None, 0) for _ in keys)
    result = _Search(live, steps, txn_model.apply, initial).run(steps_max, deadline)
    example = tuple(live) if result.verdict is Verdict.NOT_LINEARIZABLE else ()
    return KeyResult(label, result.verdict, len(ops), result.steps, example)


def _overall(results: Sequence[KeyResult]) -> Verdict:
    verdicts = {r.verdict for r in results}
    if Verdict.NOT_LINEARIZABLE in verdicts:
        return Verdict.NOT_LINEARIZABLE
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.LINEARIZABLE
