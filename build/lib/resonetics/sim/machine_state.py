"""``sim --machine``: what a run records about a user's machine.

``MachineHistory`` holds the clients' operations in virtual time for the model
check (``check/model.py``). ``Convergence`` is told every replica's machine
state after each applied index; two replicas with different states at the same
index (the machine is not deterministic) stop the run there, naming the index,
the op and both nodes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from resonetics.check.model import MachineOperation
from resonetics.raft.entry import Entry
from resonetics.raft.packing import unpacked
from resonetics.raft.types import NodeId
from resonetics.sim.invariants import SimViolation


class MachineHistory:
    """Invocations and outcomes of machine ops, in virtual time."""

    def __init__(self) -> None:
        self._open: dict[int, tuple[int, str, dict[str, Any], float]] = {}
        self._ids = 0
        self.operations: list[MachineOperation] = []

    def invoke(self, process: int, op: str, args: dict[str, Any], now: float) -> int:
        self._ids += 1
        self._open[self._ids] = (process, op, args, now)
        return self._ids

    def ok(self, handle: int, result: Any, now: float) -> None:
        process, op, args, call = self._open.pop(handle)
        self.operations.append(MachineOperation(process, op, args, call, now, result, True))

    def info(self, handle: int) -> None:
        process, op, args, call = self._open.pop(handle)
        self.operations.append(MachineOperation(process, op, args, call))

    def fail(self, handle: int) -> None:
        self._open.pop(handle)


class Convergence:
    """The first replica's state digest at each applied index; the others must match."""

    def __init__(self) -> None:
        self._first: dict[int, tuple[NodeId, str]] = {}

    def check(self, node: NodeId, entry: Entry, state: bytes) -> None:
        digest = hashlib.sha256(state).hexdigest()
        first = self._first.setdefault(entry.index, (node, digest))
        if first[1] != digest:
            raise SimViolation(
                f"replicas diverge: after applying index {entry.index} ({_describe(entry)}) "
                f"{node}'s machine state differs from {first[0]}'s — the machine is not "
                "deterministic (resonetics.machine.determinism.check_determinism finds the op)"
            )


def _describe(entry: Entry) -> str:
    data = unpacked(entry).data
    if isinstance(data, list):
        return "batch of " + ", ".join(str(d.get("op")) for d in data if isinstance(d, dict))
    if isinstance(data, dict):
        return f"{data.get('op')} {data.get('args')}"
    return entry.type.name


__all__ = ["Convergence", "MachineHistory"]
