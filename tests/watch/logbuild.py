"""A hash-chained log built as a leader would, for watch tests (GENESIS first)."""

from __future__ import annotations

from typing import Any

from resonetics.machine.changes import ChangeHistory, attach_history
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import GENESIS, Entry, EntryType, make_entry


class Log:
    def __init__(self) -> None:
        self.entries: list[Entry] = [GENESIS]
        self.prev = GENESIS.hash
        self._rid = 0

    def add(self, type_: EntryType, data: Any = None, term: int = 1) -> Entry:
        entry = make_entry(self.prev, term, len(self.entries), type_, data)
        self.entries.append(entry)
        self.prev = entry.hash
        return entry

    def command(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        self._rid += 1
        return {"client_id": "c", "request_id": f"r{self._rid}", "op": op, "args": args, "ts": 0}

    def cmd(self, op: str, **args: Any) -> Entry:
        return self.add(EntryType.CLIENT_CMD, self.command(op, args))

    def batch(self, *commands: tuple[str, dict[str, Any]]) -> Entry:
        return self.add(EntryType.CLIENT_BATCH, [self.command(op, a) for op, a in commands])


def replica(**limits: int) -> tuple[ReplicatedKV, ChangeHistory]:
    """A replicated store with a change history attached (``limits``: its bounds)."""
    replicated = ReplicatedKV()
    history = attach_history(replicated)
    assert history is not None
    for name, value in limits.items():
        setattr(history, name, value)
    return replicated, history


def changes(history: ChangeHistory, from_index: int = 0) -> list[tuple[int, str, str, Any]]:
    return [
        (r.index, key, kind, value)
        for r in history.records_from(from_index)
        for key, kind, value in r.changes
    ]
