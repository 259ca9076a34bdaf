"""Transactions in the linearizability check: the keys a txn ties together are one object.

Theory of operation
-------------------
Linearizability is compositional per *object* (Herlihy & Wing 1990), and a
transaction makes the keys it names one object: its compares read them and its
branch writes them in one instant. So the history's keys are grouped by
union-find over the keys of each txn; a group without a txn is checked as
before, one register per key; a group with one is checked by the same Wing &
Gong/Lowe search (``linearizability._Search``) over a richer state: for each of
the group's keys, its value (canonical JSON, None when absent) and its version
(writes since creation, 0 when absent), as the store keeps them.

Each step of that model:

* ``set``: value, version + 1 (1 for a new key); ``delete``: absent, 0 (legal
  when its ``deleted`` flag, if any, matches); ``get``: legal when it read the
  value; ``cas``: as the register's, a success counts as a write.
* ``txn``: every compare (``value`` ``==``/``!=``: an absent key has no value;
  ``exists``; ``version`` ``== != < >``) against the state before it; then the
  chosen branch in order, its gets reading ``[key, value, version]``. A
  completed txn is legal when it took the branch it reported and read what it
  reported; a pending one (outcome unknown) is always legal and applies exactly
  as the store would.

A violation in such a group is reported with the group's operations as they
are (the register minimizer does not know transactions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resonetics.check.history import Key, Operation, canonical

#: One key's state in the model: (canonical value or None, version).
Cell = tuple[str | None, int]
_ABSENT: Cell = (None, 0)


@dataclass(frozen=True, slots=True)
class ModelStep:
    """An operation digested for the multi-key model: slots instead of keys."""

    f: str
    pending: bool
    slot: int = -1
    write: str | None = None
    expected: str | None = None
    read: str | None = None
    success: bool | None = None
    deleted: bool | None = None
    #: txn: compares (slot, target, op, against), branches (type, slot, value), outcome.
    compare: tuple[tuple[int, str, str, Any], ...] = ()
    then: tuple[tuple[str, int, str | None], ...] = ()
    otherwise: tuple[tuple[str, int, str | None], ...] = ()
    succeeded: bool | None = None
    reads: tuple[tuple[int, str | None, int], ...] = ()


def txn_keys(op: Operation) -> list[Key]:
    """Every key a txn names (its compares and both branches)."""
    spec = op.input
    keys: list[Key] = [c[0] for c in spec["compare"]]
    keys += [o[1] for b in ("then", "else") for o in spec[b]]
    return keys


def groups(ops: Sequence[Operation]) -> list[list[Key]]:
    """The keys tied together by txns (union-find); only groups holding a txn."""
    parent: dict[Key, Key] = {}

    def find(k: Key) -> Key:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for op in ops:
        if op.f != "txn":
            continue
        keys = txn_keys(op) or [op.key]
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        find(keys[0])
    by_root: dict[Key, list[Key]] = {}
    for k in parent:
        by_root.setdefault(find(k), []).append(k)
    return [sorted(g, key=lambda k: (isinstance(k, str), k)) for g in by_root.values()]


def digest(op: Operation, slots: dict[Key, int]) -> ModelStep:
    if op.f != "txn":
        return _digest_single(op, slots[op.key])
    spec = op.input
    compare = tuple((slots[c[0]], c[1], c[2], c[3]) for c in spec["compare"])

    def branch(name: str) -> tuple[tuple[str, int, str | None], ...]:
        return tuple((o[0], slots[o[1]], canonical(o[2])) for o in spec[name])

    succeeded = reads = None
    if not op.pending and isinstance(op.output, dict):
        succeeded = bool(op.output["succeeded"])
        reads = tuple((slots[r[0]], canonical(r[1]), int(r[2])) for r in op.output["reads"])
    return ModelStep(
        "txn",
        op.pending,
        compare=compare,
        then=branch("then"),
        otherwise=branch("else"),
        succeeded=succeeded,
        reads=reads or (),
    )


def _digest_single(op: Operation, slot: int) -> ModelStep:
    if op.f == "cas":
        expected, new = op.input
        return ModelStep(
            "cas", op.pending, slot, canonical(new), canonical(expected), success=op.success
        )
    if op.f == "set":
        return ModelStep("set", op.pending, slot, canonical(op.input))
    if op.f == "get":
        return ModelStep("get", op.pending, slot, read=canonical(op.output))
    return ModelStep("delete", op.pending, slot, deleted=op.deleted)


def _written(cell: Cell, value: str | None) -> Cell:
    return (value, 1 if cell[0] is None else cell[1] + 1)


def _holds(cell: Cell, target: str, op: str, against: Any) -> bool:
    if target == "value":
        if cell[0] is None:
            return op == "!="
        same = cell[0] == canonical(against)
        return same if op == "==" else not same
    if target == "exists":
        same = (cell[0] is not None) is bool(against)
        return same if op == "==" else not same
    have, want = cell[1], int(against)
    return {"==": have == want, "!=": have != want, "<": have < want, ">": have > want}[op]


def apply(state: tuple[Cell, ...], s: ModelStep) -> tuple[bool, tuple[Cell, ...]]:
    """One step of the model: (legal, new state)."""
    if s.f == "txn":
        return _apply_txn(state, s)
    cell = state[s.slot]
    if s.f == "get":
        return s.read == cell[0], state
    if s.f == "set":
        return True, _replace(state, s.slot, _written(cell, s.write))
    if s.f == "delete":
        legal = s.deleted is None or s.deleted == (cell[0] is not None)
        return legal, _replace(state, s.slot, _ABSENT)
    matches = cell[0] == s.expected
    after = _replace(state, s.slot, _written(cell, s.write)) if matches else state
    if s.pending:
        return True, after
    return (matches, after) if s.success else (not matches, state)


def _apply_txn(state: tuple[Cell, ...], s: ModelStep) -> tuple[bool, tuple[Cell, ...]]:
    ok = all(_holds(state[slot], t, op, a) for slot, t, op, a in s.compare)
    cells = list(state)
    reads: list[tuple[int, str | None, int]] = []
    for kind, slot, value in s.then if ok else s.otherwise:
        if kind == "put":
            cells[slot] = _written(cells[slot], value)
        elif kind == "delete":
            cells[slot] = _ABSENT
        else:
            reads.append((slot, cells[slot][0], cells[slot][1]))
    after = tuple(cells)
    if s.pending:
        return True, after
    return (ok == s.succeeded and tuple(reads) == s.reads), after


def _replace(state: tuple[Cell, ...], slot: int, cell: Cell) -> tuple[Cell, ...]:
    return (*state[:slot], cell, *state[slot + 1 :])


__all__ = ["Cell", "ModelStep", "apply", "digest", "groups", "txn_keys"]
