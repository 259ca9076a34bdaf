"""Stale reads checked against committed history (they are not linearizable by design).

A stale read answers from one node's applied state, however far behind. Its promise
is weaker than linearizability but still exact: the value must be the one the
committed history gives the key *at the node's applied index*. The oracle replays
every committed entry once, in index order (the first time any node applies an
index, every lower index has already been applied somewhere), through its own
replicated store, and remembers each key's value after every write to it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import msgspec

from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.types import Index

_CANONICAL = msgspec.json.Encoder(order="sorted")


@dataclass(slots=True)
class StaleReadOracle:
    machine: ReplicatedKV = field(default_factory=ReplicatedKV)
    #: key -> (indexes of writes to it, the key's value after each: (found, value)).
    _indexes: dict[str, list[Index]] = field(default_factory=dict)
    _values: dict[str, list[tuple[bool, Any]]] = field(default_factory=dict)
    checked: int = 0

    def observe(self, entry: Entry) -> None:
        """Feed the next committed entry (index = previous + 1)."""
        if entry.index <= self.machine.last_applied:
            return
        self.machine.apply(entry)
        if entry.type is EntryType.CLIENT_CMD:
            commands = [entry.data]
        elif entry.type is EntryType.CLIENT_BATCH and isinstance(entry.data, list):
            commands = entry.data
        else:
            return
        # A reader at this index sees the state after the whole entry, so each key
        # the entry wrote is recorded once, with its value after the last command.
        keys: list[str] = []
        for data in commands:
            if not isinstance(data, dict):
                continue
            args = data.get("args")
            if not isinstance(args, dict):
                continue
            if data.get("op") in ("kv_set", "kv_delete", "kv_cas"):
                written = [args.get("k")]
            elif data.get("op") == "kv_txn":  # either branch may have run: note both
                written = [
                    op.get("key")
                    for branch in ("then", "else")
                    for op in args.get(branch, [])
                    if isinstance(op, dict) and op.get("type") != "get"
                ]
            else:
                continue
            for key in written:
                if isinstance(key, str) and key not in keys:
                    keys.append(key)
        for key in keys:
            now = self.machine.read("kv_get", {"k": key})
            self._indexes.setdefault(key, []).append(entry.index)
            self._values.setdefault(key, []).append((bool(now["found"]), now["value"]))

    def expected(self, key: str, index: Index) -> tuple[bool, Any]:
        """The key's (found, value) in committed history as of ``index``."""
        indexes = self._indexes.get(key, [])
        at = bisect.bisect_right(indexes, index)
        return (False, None) if at == 0 else self._values[key][at - 1]

    def check(self, key: str, result: dict[str, Any]) -> str | None:
        """None if the stale read ``result`` matches history at its applied index."""
        index = result["applied_index"]
        if index > self.machine.last_applied:
            return f"stale read of {key} at applied index {index}, beyond anything committed"
        found, value = self.expected(key, index)
        self.checked += 1
        got = (bool(result.get("found")), result.get("value"))
        if got[0] != found or _CANONICAL.encode(got[1]) != _CANONICAL.encode(value):
            return (
                f"stale read of {key} at applied index {index} returned {got}, "
                f"but committed history has {(found, value)} there"
            )
        return None


__all__ = ["StaleReadOracle"]
