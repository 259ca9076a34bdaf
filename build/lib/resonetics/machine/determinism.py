"""Checking a machine's determinism: the same commands, two instances, the same answers.

Theory of operation
-------------------
``check_determinism(factory, ops, n=..., seed=...)`` builds two instances and
feeds both the same ``n`` random ops (a seeded ``random.Random``; commands get
increasing log indexes and leader stamps ``ts`` that sometimes step backwards,
as a new leader's clock may). Both instances are wrapped in ``ServedMachine``,
so results are compared as a client would receive them (an exception becomes
the same error result). After every op the results and the snapshots must be
byte-identical; at a point in the middle (and again at ``n * 3/4``) the second
instance is replaced by a fresh one restored from its own snapshot, as a
replica that restarts or installs a snapshot would be — so a machine whose
behaviour depends on how its state was built (a ``set``'s iteration order, an
object's id, the wall clock) diverges there if not before. The first
difference raises ``Nondeterminism`` naming the step, the op and its args. A
query that changes the state is caught too: it runs on one replica only.

Random arguments come from the machine's ``sim_ops(rng)`` hook when it has one,
else from each op's arg struct (``random_args``), checked by the struct as the
gateway would check them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

import msgspec

from resonetics import limits
from resonetics.errors import MachineError, Nondeterminism
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import MachineOp, declared_ops, machine_name
from resonetics.machine.served import ServedMachine

#: Picks one op and its args: rng -> (op name, args).
OpsGenerator = Callable[[random.Random], tuple[str, dict[str, Any]]]

_CANONICAL: Final = msgspec.json.Encoder(order="deterministic")
_STRINGS: Final = ("a", "b", "c", "k1", "k2")
#: How deep ``random_args`` builds nested containers.
_DEPTH_MAX: Final = 2


def check_determinism(
    factory: Callable[[], StateMachine],
    ops: OpsGenerator | None = None,
    *,
    n: int = 200,
    seed: int = 0,
) -> None:
    """Raise ``Nondeterminism`` at the first op where two instances disagree."""
    if not 1 <= n <= limits.DETERMINISM_OPS_MAX:
        raise ValueError(f"n: between 1 and {limits.DETERMINISM_OPS_MAX}, got {n}")
    rng = random.Random(seed)
    left, right = ServedMachine(factory()), ServedMachine(factory())
    name = machine_name(left.inner)
    generate = ops or ops_generator(left.inner)
    restore_at = {n // 2, (3 * n) // 4}
    ts, index = 1_000, 0
    for step in range(n):
        op, args = checked_op(left.inner, *generate(rng))
        if op in left.commands:
            index += 1
            ts = max(0, ts + rng.randint(-20, 200))
            command = {"op": op, "args": args, "ts": ts}
            a, b = left.apply(index, command), right.apply(index, command)
        else:
            # A query runs on one replica only: if it changed the state, that replica
            # would now differ from the others.
            before = left.snapshot()
            a, b = left.read(op, dict(args)), right.read(op, dict(args))
            _compare(name, step, op, args, "query", before, left.snapshot())
        _compare(name, step, op, args, "result", _canonical(a), _canonical(b))
        _compare(name, step, op, args, "snapshot", left.snapshot(), right.snapshot())
        if step in restore_at:
            fresh = ServedMachine(factory())
            fresh.restore(right.snapshot())
            right = fresh
            _compare(name, step, op, args, "snapshot", left.snapshot(), right.snapshot())


def _compare(name: str, step: int, op: str, args: Any, what: str, a: bytes, b: bytes) -> None:
    if a != b:
        raise Nondeterminism(name, step, op, args, what, a.decode(), b.decode())


def _canonical(value: Any) -> bytes:
    try:
        return _CANONICAL.encode(value)
    except TypeError:
        return repr(value).encode()


def checked_op(machine: StateMachine, op: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(op, args)`` as the gateway would pass them on: args converted by the op's
    struct (defaults filled in); ``MachineError`` for an undeclared op or bad args."""
    declared = declared_ops(machine).get(op)
    if declared is None:
        raise MachineError(f"machine {machine_name(machine)!r}: generator gave unknown op {op!r}")
    if declared.args is None:
        return op, dict(args)
    try:
        value = msgspec.convert(args, type=declared.args)
    except msgspec.ValidationError as exc:
        raise MachineError(f"generated args for {op!r} are invalid: {exc}") from None
    return op, msgspec.to_builtins(value)


def ops_generator(machine: StateMachine) -> OpsGenerator:
    """The machine's ``sim_ops`` hook, else random args from each op's struct."""
    hook = getattr(machine, "sim_ops", None)
    if callable(hook):
        return hook  # type: ignore[no-any-return]
    declared: list[MachineOp] = sorted(declared_ops(machine).values(), key=lambda o: o.name)

    def generate(rng: random.Random) -> tuple[str, dict[str, Any]]:
        op = rng.choice(declared)
        return op.name, {} if op.args is None else random_args(op.args, rng)

    return generate


def random_args(struct: type[msgspec.Struct], rng: random.Random) -> dict[str, Any]:
    """Random values for ``struct``'s fields that its constraints accept (small ranges,
    so ops collide on the same keys)."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.encode_name: _value(f.type, rng, 0) for f in info.fields}


def _value(t: msgspec.inspect.Type, rng: random.Random, depth: int) -> Any:
    mi = msgspec.inspect
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -2)
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 20)
        return rng.randint(low, max(low, min(high, low + 500)))
    if isinstance(t, mi.FloatType):
        return rng.choice((0.5, 1.0, 2.25))
    if isinstance(t, mi.BoolType):
        return rng.random() < 0.5
    if isinstance(t, mi.StrType):
        return rng.choice(_STRINGS)
    if isinstance(t, mi.NoneType):
        return None
    if isinstance(t, mi.UnionType):
        return _value(rng.choice(t.types), rng, depth)
    if isinstance(t, mi.LiteralType):
        return rng.choice(t.values)
    if isinstance(t, (mi.ListType, mi.VarTupleType)) and depth < _DEPTH_MAX:
        return [_value(t.item_type, rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if isinstance(t, mi.TupleType):
        return [_value(x, rng, depth + 1) for x in t.item_types]
    if isinstance(t, mi.DictType) and depth < _DEPTH_MAX:
        return {
            str(_value(t.key_type, rng, depth + 1)): _value(t.value_type, rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        }
    if isinstance(t, mi.StructType) and depth < _DEPTH_MAX:
        return {f.encode_name: _value(f.type, rng, depth + 1) for f in t.fields}
    if isinstance(t, mi.Metadata):
        return _value(t.type, rng, depth)
    return rng.randint(0, 9)  # Any, or nesting cut short: a small JSON value


__all__ = ["OpsGenerator", "check_determinism", "checked_op", "ops_generator", "random_args"]
