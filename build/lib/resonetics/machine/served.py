"""The adapter between a user's ``StateMachine`` and the replicated runtime.

Theory of operation
-------------------
``ReplicatedKV`` (sessions, receipts, the snapshot format) wraps a machine and
the driver applies and reads through it. A user's machine is wrapped once more
by ``ServedMachine``, which makes three promises the runtime relies on:

* every result is a JSON object: ``{"value": <what the machine returned>}``, so
  a command's receipt can be added to it and a stale read can say how far
  behind it is; the value goes through ``msgspec.to_builtins`` (a value that
  cannot become JSON is an error result, never a node that cannot encode it);
* an exception raised by ``apply`` or ``read`` becomes the error result
  ``{"ok": false, "code": "BAD_REQUEST", "message": ...}``: a deterministic
  machine raises the same way on every replica, so every replica records the
  same result and the node keeps running (the determinism contract in
  ``machine/base.py`` still says: return errors, do not raise them);
* only declared ops reach it: a command that is not declared as one (only a
  leader that bypassed the gateway could log it) is answered with an error.

The snapshot is the machine's own ``snapshot()`` bytes, which ``ReplicatedKV``
stores in its format next to the sessions (never pickle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from resonetics.errors import BadRequest
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import declared_ops, machine_name


class ServedMachine(StateMachine):
    """A user's machine as the runtime serves it (see the module docstring)."""

    read_ops: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, machine: StateMachine) -> None:
        self.inner = machine
        self.declared = declared_ops(machine)
        self.name_ = machine_name(machine)
        self.commands = frozenset(n for n, op in self.declared.items() if op.kind == "command")
        self.queries = frozenset(n for n, op in self.declared.items() if op.kind == "query")
        # Per instance: ReplicatedKV reads it to decide which results get a receipt.
        self.read_ops = self.queries  # type: ignore[misc]

    def apply(self, index: int, command: Any) -> dict[str, Any]:
        op = command.get("op") if isinstance(command, Mapping) else None
        if op not in self.commands:
            return _error(f"op {op!r} is not a command of machine {self.name_!r}")
        try:
            return {"value": msgspec.to_builtins(self.inner.apply(index, command))}
        except Exception as exc:  # the machine's own failure: one result, same everywhere
            return _error(f"{op}: {type(exc).__name__}: {exc}")

    def read(self, op: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if op not in self.queries:
            return _error(f"op {op!r} is not a query of machine {self.name_!r}")
        try:
            return {"value": msgspec.to_builtins(self.inner.read(op, args))}
        except Exception as exc:
            return _error(f"{op}: {type(exc).__name__}: {exc}")

    def snapshot(self) -> bytes:
        return self.inner.snapshot()

    def restore(self, data: bytes) -> None:
        self.inner.restore(data)


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "code": BadRequest.code, "message": message}


__all__ = ["ServedMachine"]
