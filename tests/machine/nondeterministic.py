"""Planted nondeterministic machines: the referees (determinism checker, ``sim
--machine``) must catch each of them."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from resonetics import StateMachine
from resonetics.machine.ops import MachineOp, command, query
from resonetics.machine.replicated_object import ReplicatedObject
from resonetics.machine.replicated_object import command as command_method
from resonetics.machine.replicated_object import query as query_method


class ItemArgs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    item: str


class SetOrder(StateMachine):
    """Keeps a ``set`` and answers ``first`` (and snapshots) in its iteration order,
    which depends on how the set was built: a restored replica answers differently.

    The set holds each item's CRC-32, not the string: a string's hash changes with the
    process's hash seed, and with it whether this run's rebuilt set happened to iterate
    in the same order (it did for about one seed in 400, and the test that expects the
    checker to catch this machine failed). An int hashes to itself, so the run is the same
    in every process."""

    name: ClassVar[str] = "planted-set-order"
    ops: ClassVar[tuple[MachineOp, ...]] = (
        command("add", ItemArgs),
        command("discard", ItemArgs),
        query("first"),
    )

    def __init__(self) -> None:
        self.items: set[int] = set()

    def apply(self, index: int, command: Any) -> Any:
        item = zlib.crc32(command["args"]["item"].encode())
        if command["op"] == "add":
            self.items.add(item)
        else:
            self.items.discard(item)
        return next(iter(self.items), None)

    def read(self, op: str, args: Mapping[str, Any]) -> Any:
        return next(iter(self.items), None)

    def snapshot(self) -> bytes:
        return msgspec.json.encode(list(self.items))

    def restore(self, data: bytes) -> None:
        self.items = set(msgspec.json.decode(data, type=list[int]))

    @staticmethod
    def sim_ops(rng: Any) -> tuple[str, dict[str, Any]]:
        item = f"item-{rng.randint(0, 40)}"
        return rng.choice(("add", "add", "discard")), {"item": item}


_instances = itertools.count(1)


class InstanceId(ReplicatedObject):
    """Stamps every applied command with which instance applied it (as ``id(self)``
    would): fine on one replica, different on every other."""

    name = "planted-instance-id"
    stamps: list[int] = msgspec.field(default_factory=list)

    def __init__(self) -> None:
        super().__init__()
        self.me = next(_instances)

    @command_method
    def stamp(self) -> int:
        self.stamps.append(self.me)
        return len(self.stamps)

    @query_method
    def count(self) -> int:
        return len(self.stamps)


class Honest(ReplicatedObject):
    """A deterministic machine built the same way (the control)."""

    name = "honest"
    seen: dict[str, int] = msgspec.field(default_factory=dict)

    @command_method
    def see(self, item: str) -> int:
        self.seen[item] = self.seen.get(item, 0) + 1
        return self.seen[item]

    @query_method
    def first(self) -> str | None:
        return next(iter(self.seen), None)


class ForgetfulModelCounter(ReplicatedObject):
    """A correct counter whose declared model forgets every other increment: the
    simulator's model check must reject the history it sees."""

    name = "planted-forgetful-model"
    value: int = 0

    @command_method
    def incr(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @query_method
    def get(self) -> int:
        return self.value

    @staticmethod
    def model(state: Any, op: str, args: dict[str, Any]) -> tuple[Any, Any]:
        value, calls = state or (0, 0)
        if op == "incr":
            calls += 1
            value += args["by"] if calls % 2 else 0
        return [value, calls], value


class CountingReads(ReplicatedObject):
    """A query that changes the state (counts its own calls): only the replica that
    served it changes, so the replicas drift apart."""

    name = "planted-counting-reads"
    value: int = 0
    reads: int = 0

    @command_method
    def incr(self) -> int:
        self.value += 1
        return self.value

    @query_method
    def get(self) -> int:
        self.reads += 1
        return self.value
