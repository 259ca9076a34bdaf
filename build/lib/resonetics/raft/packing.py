"""Client commands kept as their canonical JSON bytes, from proposal to compaction.

Theory of operation
-------------------
A client entry's ``data`` (a command, or a CLIENT_BATCH's list of them) is held
*packed*: a ``msgspec.Raw`` of its canonical JSON (sorted keys, the encoding the
chain hash covers). Three reasons, in the order they were measured:

* **The collector.** Between two snapshots the in-memory log holds every command
  since the last one. Decoded, a command dict that holds a dict stays tracked by
  Python's cyclic collector: about 36 tracked objects per batch entry of 34
  commands, all walked by every full collection on the event loop, 106 ms for
  7,500 entries (``bench/log_gc.py``), until heartbeats were late and a loaded
  cluster with a large store lost its leader (docs/benchmarks.md, "A store that
  grows under load"). A ``Raw`` is one untracked object and ``Entry`` is a
  ``gc=False`` struct, so a packed entry adds nothing for the collector to walk.
* **One order of keys everywhere.** The leader proposes each command packed
  (``canonical``, from ``runtime/driver.py``). Its AppendEntries carry those bytes
  verbatim, followers keep them as they arrive (``wire/peer.py``), log lines hold
  them (``storage/log_file.py`` writes sorted keys), and every replica decodes a
  command from them at apply (``machine/replicated.py``). The leader used to apply
  the client's own dict, and a lagging follower or a restarted node sorted bytes:
  a state machine that iterates a dict could have diverged.
* **Work done once.** The chain hash of a packed entry encodes its bytes
  verbatim, the log line and the AppendEntries copy them, and the apply decodes
  them straight into commands: no dicts built to be encoded again. A restart
  loads client entries packed (``from_raw``).

Nothing changes for anyone who checks an entry: ``canonical_body`` encodes a
``Raw`` verbatim, so a packed entry hashes, links and encodes exactly like the
decoded one (``tests/raft/test_packing.py``). ``RaftNode.entry_at`` and
``entries_from`` hand readers decoded entries (``unpacked``). Entries built
in-process with decoded data (the core's tests, a CONFIG) are packed by the core
once applied (``RaftLog.pack_through``).

Packed data is hashed as it came. A node from before proposals and log lines
sorted their keys wrote and sent commands in the leader's dict order: those bytes
fail the chain check although their canonical encoding links, so the log file and
the follower's append path try ``recanonicalized`` entries before refusing.

Only CLIENT_CMD and CLIENT_BATCH entries are packed: CONFIG entries are read
again (the membership in force at an index), NOOP carries nothing, and the
GENESIS anchor names the cluster.

Rejected: ``gc.freeze()`` on each tick (a process-wide choice for whoever embeds
the node; measured, it moved the pause to the unfreeze that a snapshot needs to
free what it froze).
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


class RawEntry(Entry, frozen=True, kw_only=True, gc=False):
    """An entry as decoded from bytes (a log line, an AppendEntries): ``data`` left as
    its JSON text, for ``from_raw`` to keep packed or decode."""

    data: msgspec.Raw = msgspec.Raw(b"null")


def from_raw(raw: RawEntry) -> Entry:
    """The entry ``raw`` holds: a client entry packed as the bytes it came in, any
    other decoded (the core reads CONFIG and GENESIS data as values)."""
    return Entry(
        term=raw.term,
        index=raw.index,
        type=raw.type,
        data=raw.data if raw.type in PACKED_TYPES else _DECODE(raw.data),
        hash=raw.hash,
        author=raw.author,
        sig=raw.sig,
    )


def recanonicalized(entries: Sequence[Entry]) -> Sequence[Entry]:
    """``entries`` with packed data encoded again canonically; the same sequence when
    none is packed.

    Packed data is hashed as it came. Bytes written or sent with unsorted keys (by a
    node from before lines and proposals sorted them) fail that check although their
    canonical encoding links: the log file and the follower's append path then try
    these (``storage/log_file.py``, ``RaftNode._handle_append``).
    """
    for e in entries:
        if type(e.data) is msgspec.Raw:
            return [recanonical(x) for x in entries]
    return entries


def recanonical(entry: Entry) -> Entry:
    """``entry`` with packed data encoded again canonically (one of ``recanonicalized``)."""
    return packed(unpacked(entry)) if type(entry.data) is msgspec.Raw else entry


__all__ = [
    "PACKED_TYPES",
    "RawEntry",
    "canonical",
    "from_raw",
    "is_packed",
    "packed",
    "recanonical",
    "recanonicalized",
    "unpacked",
]
