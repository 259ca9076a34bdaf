"""A replicated counter: the smallest machine ``resonetics serve --machine`` can run.

    resonetics serve --machine counter:make ...     (with examples/ on PYTHONPATH)
    resonetics call incr --arg by=2
    resonetics call value

Deterministic: the state is one integer, changed only by ``incr``; the snapshot
is its canonical JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from resonetics import StateMachine
from resonetics.machine.ops import MachineOp, command, query


class IncrArgs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    by: int = 1


class _State(msgspec.Struct, frozen=True):
    value: int


class Counter(StateMachine):
    """One integer; ``incr`` adds to it (exactly once per request), ``value`` reads it."""

    name: ClassVar[str] = "counter"
    ops: ClassVar[tuple[MachineOp, ...]] = (command("incr", IncrArgs), query("value"))

    def __init__(self) -> None:
        self.value = 0

    def apply(self, index: int, command: Any) -> Any:
        self.value += command["args"]["by"]
        return self.value

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        return self.value

    def snapshot(self) -> bytes:
        return msgspec.json.encode(_State(self.value))

    def restore(self, data: bytes) -> None:
        self.value = msgspec.json.decode(data, type=_State).value


def make() -> Counter:
    """The factory ``serve --machine counter:make`` calls."""
    return Counter()


class OtherCounter(Counter):
    """The same counter under another name (tests: a data dir founded by another machine)."""

    name: ClassVar[str] = "other-counter"


def make_other() -> OtherCounter:
    return OtherCounter()


def not_a_machine() -> dict[str, int]:
    """A factory that returns something else (tests: refused at start)."""
    return {}
