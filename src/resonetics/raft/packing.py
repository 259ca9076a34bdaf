"""Applied client entries kept as their canonical JSON, out of the garbage collector's sight.

Theory of operation
-------------------
Between two snapshots the in-memory log holds every client command since the
last one: tens of thousands of batch entries, each a list of command dicts. A
dict that holds another dict stays tracked by Python's cyclic collector, so the
log made about 36 tracked objects per batch entry of 34 commands, and every full
collection walked all of them on the event loop: 106 ms for 7,500 such entries
(``bench/log_gc.py``), growing with the log until heartbeats were late and a
loaded cluster with a large store lost its leader (docs/benchmarks.md, "A store
that grows under load"). Dropping them at compaction cost another 60 ms.

Once an entry is applied nobody reads its data as Python values again: the
state machine has it, and the log keeps it only to send it to a follower that
lags, to write it again nowhere, and to drop it at the next compaction. So the
core *packs* a client entry once it is applied: its ``data`` becomes a
``msgspec.Raw`` holding the data's canonical JSON (sorted keys, the encoding the
chain hash covers). A ``Raw`` is one untracked object; the entry itself is a
``gc=False`` struct, so a packed entry adds nothing for the collector to walk.

Nothing changes for anyone who checks an entry: ``canonical_body`` encodes a
``Raw`` verbatim, so a packed entry hashes, links and encodes exactly like the
entry it replaces (``tests/raft/test_packing.py``), and a packed entry sent in
an AppendEntries line is plain JSON to the receiver. Only an in-process
receiver (the simulator's network passes message objects) sees ``Raw`` data:
the follower's append path unpacks it (``unpacked_entries``) before the entries
reach its log, so a log's unapplied entries, what ``Ready`` hands out to apply
and to persist, are never packed.

Only CLIENT_CMD and CLIENT_BATCH entries are packed: CONFIG entries are read
again (the membership in force at an index), NOOP carries nothing, and the
GENESIS anchor names the cluster.

Rejected: ``gc.freeze()`` on each tick (a process-wide choice for whoever embeds
the node; measured, it moved the pause to the unfreeze that a snapshot needs to
free what it froze), and keeping every entry's wire bytes from the moment it
arrives (the leader and the state machine need the values until the apply).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from resonetics.raft.entry import Entry, EntryType

#: Entry types whose data only the state machine reads, once, at apply.
PACKED_TYPES: Final = frozenset({EntryType.CLIENT_CMD, EntryType.CLIENT_BATCH})

#: The chain's encoding (``entry.canonical_body``): sorted keys, no whitespace.
_CANONICAL = msgspec.json.Encoder(order="sorted")
_DECODE = msgspec.json.decode


def canonical(data: Any) -> msgspec.Raw:
    """``data`` packed: its canonical JSON, what a leader proposes (``runtime/driver.py``).

    A command is packed from birth so that every replica reads it from the same
    bytes, in the same order of keys: the leader and a restarted node decode it
    from these bytes, a follower from the AppendEntries that carries them verbatim.
    A command applied from the client's own dict on the leader but from sorted
    bytes elsewhere would let a machine that iterates a dict diverge.
    """
    return msgspec.Raw(_CANONICAL.encode(data))


def packed(entry: Entry) -> Entry:
    """``entry`` with its data held as canonical JSON bytes (same hash, same meaning)."""
    if entry.type not in PACKED_TYPES or type(entry.data) is msgspec.Raw:
        return entry
    return msgspec.structs.replace(entry, data=msgspec.Raw(_CANONICAL.encode(entry.data)))


def is_packed(entry: Entry) -> bool:
    return type(entry.data) is msgspec.Raw


def unpacked(entry: Entry) -> Entry:
    """``entry`` with its data decoded again, when it was packed."""
    if type(entry.data) is not msgspec.Raw:
        return entry
    return msgspec.structs.replace(entry, data=_DECODE(entry.data))


def unpacked_entries(entries: Sequence[Entry]) -> Sequence[Entry]:
    """``entries`` with every packed one decoded; the same sequence when none is."""
    for e in entries:
        if type(e.data) is msgspec.Raw:
            return [unpacked(x) for x in entries]
    return entries


__all__ = ["PACKED_TYPES", "canonical", "is_packed", "packed", "unpacked", "unpacked_entries"]
