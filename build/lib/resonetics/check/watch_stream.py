"""Checks a watch stream against the committed history: no gap, duplicate, reorder or
wrong hash.

Theory of operation
-------------------
The oracle is the dumbest one available (STYLE habit 11): replay the committed log
from its GENESIS through a fresh ``ReplicatedKV`` whose key-value store reports to an
unbounded ``ChangeHistory`` — the very derivation a node performs, but from the log
alone, with no watch code involved — and list every change with the index, term and
chain hash of its entry. A stream that covered ``[from_index, through]`` under
``prefix`` must then equal, item for item, the committed changes in that range whose
key starts with ``prefix``. Any difference is classified:

- *duplicate*: a change delivered twice;
- *reorder*: an index lower than the one before it;
- *hash*: an event whose (index, term, hash) is not the committed entry's;
- *gap*: a committed change the stream never delivered;
- *foreign*: a change the committed history does not hold (a wrong key or value, or a
  key outside the prefix).

The log must be complete from GENESIS (no snapshot) up to ``through``; the checker
also verifies the chain itself (each entry's hash links to the one before).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from resonetics.machine.changes import ChangeHistory
from resonetics.machine.kv import KeyValueStore
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import Entry, EntryType, entry_links


class EventLike(Protocol):
    """What the checker reads of a delivered event (``WatchEvent`` or the like)."""

    @property
    def index(self) -> int: ...
    @property
    def term(self) -> int: ...
    @property
    def hash(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class CommittedChange:
    index: int
    term: int
    hash: str
    key: str
    kind: str
    value: Any


@dataclass
class StreamCheck:
    """The verdict on one stream: ``ok`` when ``problems`` is empty."""

    checked_events: int = 0
    expected_events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def committed_changes(entries: Iterable[Entry]) -> list[CommittedChange]:
    """Every change the committed ``entries`` (GENESIS first, contiguous) made, in order.

    Raises ``ValueError`` when the entries do not form a hash chain from a GENESIS.
    """
    replicated = ReplicatedKV(KeyValueStore())
    history = ChangeHistory(replicated, changes_max=1 << 62, bytes_max=1 << 62)
    assert isinstance(replicated.machine, KeyValueStore)
    replicated.machine.changes = history
    prev: Entry | None = None
    for entry in entries:
        if prev is None:
            if entry.type is not EntryType.GENESIS or entry.index != 0:
                raise ValueError(f"the log must start at GENESIS, not index {entry.index}")
            replicated.last_applied_hash = entry.hash
        elif entry.index != prev.index + 1 or not entry_links(prev.hash, entry):
            raise ValueError(f"entry {entry.index} does not link to entry {prev.index}")
        else:
            replicated.apply(entry)
        prev = entry
    return [
        CommittedChange(r.index, r.term, r.hash, key, kind, value)
        for r in history.records_from(0)
        for key, kind, value in r.changes
    ]


def check_stream(
    events: Sequence[EventLike],
    committed: Sequence[CommittedChange],
    *,
    prefix: str,
    from_index: int,
    through: int,
) -> StreamCheck:
    """``events`` against the committed changes under ``prefix`` in [from_index, through]."""
    expected = [
        c for c in committed if c.key.startswith(prefix) and from_index <= c.index <= through
    ]
    report = StreamCheck(checked_events=len(events), expected_events=len(expected))
    by_index: dict[int, tuple[int, str]] = {c.index: (c.term, c.hash) for c in committed}
    seen: set[tuple[int, str, str, str]] = set()
    last = 0
    for n, ev in enumerate(events):
        ident = (ev.index, ev.key, ev.kind, repr(ev.value))
        if ident in seen:
            report.problems.append(f"duplicate: event {n} repeats {ev.key!r} at index {ev.index}")
        seen.add(ident)
        if ev.index < last:
            report.problems.append(f"reorder: event {n} at index {ev.index} after index {last}")
        last = max(last, ev.index)
        known = by_index.get(ev.index)
        if known is not None and known != (ev.term, ev.hash):
            report.problems.append(
                f"hash: event {n} says index {ev.index} is term {ev.term} hash {ev.hash[:12]}, "
                f"the log says term {known[0]} hash {known[1][:12]}"
            )
    delivered = {(e.index, e.key, e.kind, repr(e.value)) for e in events}
    wanted = {(c.index, c.key, c.kind, repr(c.value)) for c in expected}
    for c in expected:
        if (c.index, c.key, c.kind, repr(c.value)) not in delivered:
            report.problems.append(f"gap: {c.kind} of {c.key!r} at index {c.index} never delivered")
    for e in events:
        if (e.index, e.key, e.kind, repr(e.value)) not in wanted:
            report.problems.append(
                f"foreign: {e.kind} of {e.key!r} at index {e.index} is no committed change "
                f"under {prefix!r} in [{from_index}, {through}]"
            )
    if not report.problems and [(c.index, c.key) for c in expected] != [
        (e.index, e.key) for e in events
    ]:
        report.problems.append("reorder: the events are not in the log's order within an entry")
    return report


__all__ = ["CommittedChange", "EventLike", "StreamCheck", "check_stream", "committed_changes"]
