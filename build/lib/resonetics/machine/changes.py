"""The change history watch streams are served from: what each applied entry changed.

Theory of operation
-------------------
A change is a *result*, not a command: a failed CAS, a delete of an absent key and
a deduplicated retry change nothing, so changes are derived where the result is
decided, while the entry is applied, on every node alike (leader and followers).
The key-value store reports each mutation to its ``changes`` sink
(``KeyValueStore.set``/``delete``, its only mutators, so a transaction's puts and
deletes report themselves too); ``ChangeHistory`` is that sink. It reads the entry
being applied (index, term, chain hash) from the ``ReplicatedKV`` it watches, which
sets them before applying the entry, and files the change under that entry: one
record per entry that changed something, holding a list of changes (several for a
``CLIENT_BATCH`` entry or a transaction), in log order.

Cost on the write path: a record holds references (the key and value objects the
store already holds, the entry's hash string), never copies; the only extra work
per change is a size estimate for the byte bound (``value_bytes``: free for strings
and scalars, one C-speed encode for a container). Nothing is encoded for the wire
here; the watch hub encodes an event once when a watcher first needs it.

Bounds: the history is a ring over ``WATCH_HISTORY_CHANGES_MAX`` changes and
``WATCH_HISTORY_BYTES_MAX`` estimated bytes; the oldest records go first.

# Invariant: every change made by an entry with index in [oldest_index, applied] is
# in the history, in log order (``oldest_index`` = ``start + 1``).

``start`` moves forward when the ring drops a record (to that record's index) and
when the state is replaced by a snapshot (``reset``: the snapshot's index, learned
lazily as the first index applied after it, minus one — never earlier than the truth,
so a ``from_index`` the history cannot serve is always refused). After a restart the
history holds what was replayed since the snapshot the node started from.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any, Final, Literal, Protocol

import msgspec

from resonetics import limits

ChangeKind = Literal["put", "delete"]
PUT: Final = "put"
DELETE: Final = "delete"
_ENCODER: Final = msgspec.json.Encoder()


class AppliedPosition(Protocol):
    """Where the replicated state is: ``ReplicatedKV`` sets these before applying."""

    last_applied: int
    last_applied_term: int
    last_applied_hash: str


class Record:
    """The changes one entry made, with the running totals before it (for lag math)."""

    __slots__ = (
        "bytes_before", "changes", "changes_before", "encoded", "hash", "index", "size", "term",
    )  # fmt: skip

    def __init__(
        self, index: int, term: int, hash_: str, changes_before: int, bytes_before: int
    ) -> None:
        self.index = index
        self.term = term
        self.hash = hash_
        #: (key, kind, value after: None for a delete), in the order they were made.
        self.changes: list[tuple[str, ChangeKind, Any]] = []
        self.changes_before = changes_before
        self.bytes_before = bytes_before
        self.size = 0
        #: The changes as wire events, made by the watch hub when a watcher first needs
        #: them (an opaque cache: this module never reads it).
        self.encoded: Any = None


_SCALARS: Final = frozenset({int, float, bool, type(None)})


def value_bytes(value: Any) -> int:
    """An estimate of ``value``'s encoded size, cheap for the common shapes (exact
    types: JSON values decode to exactly these)."""
    kind = type(value)
    if kind is str:
        return len(value) + 2
    if kind in _SCALARS:
        return 8
    return len(_ENCODER.encode(value))


class ChangeHistory:
    """A bounded, in-memory ring of the changes applied entries made (the module's theory)."""

    def __init__(
        self,
        position: AppliedPosition,
        *,
        changes_max: int = limits.WATCH_HISTORY_CHANGES_MAX,
        bytes_max: int = limits.WATCH_HISTORY_BYTES_MAX,
    ) -> None:
        self._position = position
        self.changes_max = changes_max
        self.bytes_max = bytes_max
        self._overhead = limits.WATCH_CHANGE_OVERHEAD_BYTES
        # Records [head:] are live; the dead prefix is cut in bulk (``_compact``).
        self._records: list[Record] = []
        self._head = 0
        #: The newest record (the entry being applied files its changes there).
        self._last: Record | None = None
        #: Every change with index > start is here; None: just reset, not yet learned.
        self._start: int | None = position.last_applied
        #: Running totals of changes and estimated bytes ever recorded.
        self.total_changes = 0
        self.total_bytes = 0
        self._live_changes = 0
        self._live_bytes = 0
        #: How many times the state was replaced by a snapshot (watches that predate a
        #: reset lost history they needed: the hub ends them with COMPACTED).
        self.resets = 0
        #: Called once per new record (the watch hub's wake-up); None: nobody listens.
        self.listener: Callable[[], None] | None = None

    # --- the store's sink -------------------------------------------------------------
    def put(self, key: str, value: Any) -> None:
        self._add(key, PUT, value, len(key) + value_bytes(value))

    def delete(self, key: str) -> None:
        self._add(key, DELETE, None, len(key))

    def reset(self) -> None:
        """The state was replaced by a snapshot: what came before it is not history here."""
        self._records = []
        self._head = 0
        self._last = None
        self._live_changes = 0
        self._live_bytes = 0
        self._start = None
        self.resets += 1

    def _add(self, key: str, kind: ChangeKind, value: Any, size: int) -> None:
        # On the write path of every node: kept to a few attribute loads per change.
        index = self._position.last_applied
        size += self._overhead
        record = self._last
        if record is None or record.index != index:
            if self._start is None:
                self._start = index - 1  # the first index applied since the reset
            pos = self._position
            record = self._last = Record(
                index, pos.last_applied_term, pos.last_applied_hash,
                self.total_changes, self.total_bytes,
            )  # fmt: skip
            self._records.append(record)
            if self.listener is not None:
                self.listener()
        record.changes.append((key, kind, value))
        record.size += size
        self.total_changes += 1
        self.total_bytes += size
        self._live_changes += 1
        self._live_bytes += size
        if self._live_changes > self.changes_max or self._live_bytes > self.bytes_max:
            self._evict()

    def _evict(self) -> None:
        records = self._records
        # The newest record always stays: it is the entry being applied right now.
        while (
            self._live_changes > self.changes_max or self._live_bytes > self.bytes_max
        ) and self._head < len(records) - 1:
            old = records[self._head]
            self._head += 1
            self._live_changes -= len(old.changes)
            self._live_bytes -= old.size
            self._start = old.index
        if self._head > limits.WATCH_HISTORY_COMPACT_RECORDS and self._head * 2 > len(records):
            del records[: self._head]
            self._head = 0

    # --- what watchers read -------------------------------------------------------------
    @property
    def applied(self) -> tuple[int, int, str]:
        """(index, term, chain hash) of the last applied entry: what progress notices say."""
        pos = self._position
        return pos.last_applied, pos.last_applied_term, pos.last_applied_hash

    @property
    def oldest_index(self) -> int:
        """The oldest ``from_index`` this history can serve (every change after is here)."""
        if self._start is None:
            self._start = self._position.last_applied  # nothing changed since the reset
        return self._start + 1

    def __len__(self) -> int:
        """Records (entries with changes) held."""
        return len(self._records) - self._head

    @property
    def changes_held(self) -> int:
        return self._live_changes

    @property
    def bytes_held(self) -> int:
        return self._live_bytes

    def position_of(self, from_index: int) -> int:
        """The list position of the first record with index >= ``from_index``."""
        return bisect.bisect_left(self._records, from_index, lo=self._head, key=_index_of)

    def records_from(self, from_index: int) -> Iterator[Record]:
        """Records with index >= ``from_index``, oldest first (the caller checks
        ``oldest_index`` first; the list may not change while this is iterated)."""
        records = self._records
        for i in range(self.position_of(from_index), len(records)):
            yield records[i]

    def lag(self, from_index: int) -> tuple[int, int]:
        """(changes, estimated bytes) held from ``from_index`` on: a watcher's backlog."""
        i = self.position_of(from_index)
        if i >= len(self._records):
            return 0, 0
        first = self._records[i]
        return self.total_changes - first.changes_before, self.total_bytes - first.bytes_before


def _index_of(record: Record) -> int:
    return record.index


__all__ = [
    "DELETE",
    "PUT",
    "AppliedPosition",
    "ChangeHistory",
    "ChangeKind",
    "Record",
    "attach_history",
    "value_bytes",
]


def attach_history(replicated: Any) -> ChangeHistory | None:
    """A ``ChangeHistory`` fed by ``replicated``'s key-value store (None for another
    machine, which reports no changes). Attach it before any snapshot is restored or
    entry applied (before the driver is built), so the history covers what is replayed."""
    from resonetics.machine.kv import KeyValueStore

    machine = getattr(replicated, "machine", None)
    if not isinstance(machine, KeyValueStore):
        return None
    history = ChangeHistory(replicated)
    machine.changes = history
    return history
