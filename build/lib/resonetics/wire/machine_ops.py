"""A served machine's op table: its declared ops, plus the ops every node serves itself.

The key-value store declares its ops like any machine; because its args are checked
by the wire's own structs (``wire/client.py`` ``OPS``), a declared op that names no
struct and is one of ``OPS`` keeps that spec. Every other declared op becomes a
machine op: category ``write`` for a command, ``read`` for a query (authorization
and dispatch read the category), its args checked by ``validate_request``.

The host's ops (``session_open``, ``status``, membership and leadership) are in
every table; a machine may not declare one of their names.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from resonetics.errors import MachineError
from resonetics.machine.base import StateMachine
from resonetics.machine.ops import declared_ops, machine_name
from resonetics.wire.client import OPS, OpCategory, OpSpec, OpTable, _Args

#: Ops every node serves whatever its machine (categories session, monitor, admin).
HOST_SPECS: Final = {n: s for n, s in OPS.items() if s.category not in ("read", "write")}


class _MachineArgs(_Args, frozen=True, kw_only=True):
    """Placeholder args type of a machine op (its args are checked as a JSON object)."""


_OBJECT_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def _field_names(args: type[msgspec.Struct] | None) -> frozenset[str]:
    """The wire names of a struct's fields (once per op: ``structs.fields`` is slow)."""
    if args is None:
        return frozenset()
    return frozenset(f.encode_name for f in msgspec.structs.fields(args))


def op_table(machine: StateMachine) -> OpTable:
    """The op table of a node serving ``machine`` (``MachineError`` for a bad declaration)."""
    specs: dict[str, OpSpec] = dict(HOST_SPECS)
    name = machine_name(machine)
    for op in declared_ops(machine).values():
        if op.name in HOST_SPECS:
            raise MachineError(f"machine {name!r}: op {op.name!r} is a name the node uses itself")
        category: OpCategory = "write" if op.kind == "command" else "read"
        wire = OPS.get(op.name)
        if op.args is None and wire is not None and wire.category == category:
            specs[op.name] = wire
            continue
        specs[op.name] = OpSpec(
            op.name,
            _MachineArgs,
            category,
            _OBJECT_DECODER,
            op.key_arg,
            machine_op=True,
            machine_args=op.args,
            machine_fields=_field_names(op.args),
        )
    logged = frozenset(n for n, s in specs.items() if s.category in ("write", "session"))
    reads = frozenset(n for n, s in specs.items() if s.category == "read")
    return OpTable(machine=name, specs=specs, logged=logged, reads=reads)


__all__ = ["HOST_SPECS", "op_table"]
