"""What a state machine declares about its ops, and loading one by ``module:factory``.

Theory of operation
-------------------
A ``StateMachine`` lists its ops in ``ops``: each is a ``command`` (goes through
the replicated log, exactly once per request id, gets a receipt) or a ``query``
(served from applied state after a ReadIndex round, or ``lease``/``stale`` when
the request asks). An op may name an argument struct (a ``msgspec.Struct``):
the gateway checks a request's ``args`` against it before anything is logged,
so every replica applies an already checked command; without one, ``args`` is
any JSON object. An op may name its ``key_arg``: the argument holding the key
authorization judges (see ``docs/machines.md``); without one the op is judged
on the key ``op:<name>``.

The server, the dispatch and the gatekeeper read this one declaration
(``wire/machine_ops.py`` turns it into the op table), so the key-value store is
declared the same way as any other machine.

``load_factory("pkg.mod:factory")`` imports a factory for ``serve --machine``;
every way that fails is one ``MachineError`` naming the spec.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec

from resonetics.errors import MachineError
from resonetics.machine.base import StateMachine

OpKind = Literal["command", "query"]

#: An op's name: what a client sends as ``op`` (the wire's own ops use the same alphabet).
_OP_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: ``package.module:factory`` (the factory may be an attribute path, ``mod:Class.make``).
_FACTORY_SPEC: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True, slots=True)
class MachineOp:
    """One declared op: its name, whether it is logged, its args and its key argument."""

    name: str
    kind: OpKind
    #: The args' struct (checked at the gateway); None: any JSON object.
    args: type[msgspec.Struct] | None = None
    #: The argument naming the key authorization judges; None: the key ``op:<name>``.
    key_arg: str | None = None

    def __post_init__(self) -> None:
        if not _OP_NAME.match(self.name):
            raise MachineError(
                f"op name {self.name!r}: use lowercase letters, digits and _ (at most 64)"
            )
        if self.kind not in ("command", "query"):
            raise MachineError(f"op {self.name!r}: kind must be 'command' or 'query'")
        if self.args is not None and not (
            isinstance(self.args, type) and issubclass(self.args, msgspec.Struct)
        ):
            raise MachineError(f"op {self.name!r}: args must be a msgspec.Struct class")


def command(
    name: str, args: type[msgspec.Struct] | None = None, *, key_arg: str | None = None
) -> MachineOp:
    """Declare a logged op (applied once per request id, answered with a receipt)."""
    return MachineOp(name, "command", args, key_arg)


def query(
    name: str, args: type[msgspec.Struct] | None = None, *, key_arg: str | None = None
) -> MachineOp:
    """Declare a read-only op served by ``StateMachine.read`` (never logged)."""
    return MachineOp(name, "query", args, key_arg)


def declared_ops(machine: StateMachine) -> dict[str, MachineOp]:
    """``machine``'s ops by name; ``MachineError`` for a duplicate or an empty declaration."""
    ops: dict[str, MachineOp] = {}
    declared: Iterable[Any] = getattr(machine, "ops", ())
    for op in declared:
        if not isinstance(op, MachineOp):
            raise MachineError(
                f"machine {machine_name(machine)!r}: ops must be command(...)/query(...), "
                f"got {op!r}"
            )
        if op.name in ops:
            raise MachineError(f"machine {machine_name(machine)!r}: op {op.name!r} declared twice")
        ops[op.name] = op
    if not ops:
        raise MachineError(f"machine {machine_name(machine)!r} declares no ops")
    return ops


def machine_name(machine: StateMachine) -> str:
    """The name a data dir and a cluster record: the class's ``name``, else its path."""
    name = getattr(type(machine), "name", "")
    if isinstance(name, str) and name:
        return name
    cls = type(machine)
    return f"{cls.__module__}.{cls.__qualname__}"


def load_factory(spec: str) -> StateMachine:
    """Import ``package.module:factory`` and call it; ``MachineError`` naming what failed."""
    if not _FACTORY_SPEC.match(spec):
        raise MachineError(f"--machine {spec!r}: expected package.module:factory")
    module_name, _, attr_path = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs the module's code: anything can escape
        raise MachineError(
            f"--machine {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise MachineError(f"--machine {spec!r}: {module_name!r} has no {attr_path!r}")
        target = getattr(target, part)
    if not callable(target):
        raise MachineError(f"--machine {spec!r}: {attr_path!r} is not callable")
    try:
        machine = target()
    except Exception as exc:
        raise MachineError(
            f"--machine {spec!r}: the factory raised {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(machine, StateMachine):
        raise MachineError(
            f"--machine {spec!r}: the factory returned {type(machine).__name__}, "
            "not a resonetics.StateMachine"
        )
    declared_ops(machine)  # refuse a bad declaration at start, not at the first request
    return machine


__all__ = [
    "MachineOp",
    "OpKind",
    "command",
    "declared_ops",
    "load_factory",
    "machine_name",
    "query",
]
