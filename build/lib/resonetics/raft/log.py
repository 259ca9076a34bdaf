"""The in-memory Raft log: an anchor entry followed by contiguous, hash-chained entries.

Theory of operation
-------------------
``RaftLog`` is the core's view of the log, durable or not; what still has to be
written to disk is tracked by the node (``Ready.entries`` / ``truncate_from``),
not here. The log starts at an *anchor* (``GENESIS`` at index 0, or a
``SNAP_DUMMY`` at a snapshot's last included index) whose term and hash are
known but which is never applied. ``entries[k]`` has index ``anchor.index + 1 + k``.

Terms are non-decreasing along the log (a leader only appends entries of its
own term after entries of earlier terms), so "first/last index of term T" is a
binary search, which keeps fast backtracking (dissertation §5.3) cheap even on
long logs. The indexes of CONFIG entries are kept on the side, so "the newest
configuration" (asked after every Ready on a leader) is O(1), not a scan.

Every mutation asserts its invariant with ``errors.invariant``: appended entries
are contiguous and chain-linked, truncation never cuts at or below the index the
caller declares committed.

``first_index`` and ``last_index`` are plain attributes that every mutation
(``append``, ``truncate_from``, ``compact``) sets, not properties computed on
each read: the core reads ``last_index`` several times per message (about
750k reads in 30 simulated seeds), and an attribute read costs a fraction of a
property call. Read them, never assign them; ``tests/raft/test_log.py``
checks them against the entries after every kind of mutation.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import msgspec

from resonetics.errors import invariant
from resonetics.raft.entry import Entry, EntryType, entry_links, snap_dummy
from resonetics.raft.packing import packed
from resonetics.raft.types import Index, Term


def entry_size_bytes(entry: Entry) -> int:
    """Approximate wire size of an entry: its encoded data plus a fixed overhead."""
    data = entry.data
    if type(data) is msgspec.Raw:  # packed (raft/packing.py): already its encoding
        return len(data) + 128
    return len(msgspec.json.encode(data)) + 128


def entries_size_bytes(entries: Sequence[Entry]) -> int:
    """``sum(entry_size_bytes(e) for e in entries)`` with one encode instead of one each.

    msgspec writes a JSON array as ``[`` + the items' own encodings joined by ``,`` +
    ``]``, with no whitespace, so the items' bytes are the array's less its
    ``len(entries) + 1`` delimiters (``tests/raft/test_log.py`` checks the two agree).
    """
    n = len(entries)
    if n == 0:
        return 0
    return len(msgspec.json.encode([e.data for e in entries])) - (n + 1) + 128 * n


#: Entries above which a recovered (linked) log is taken whole, not appended one by one.
_BULK_ENTRIES_MIN = 1_024


class RaftLog:
    """Anchor + entries. Invariant: entries[k].index == anchor.index + 1 + k, chain-linked."""

    __slots__ = (
        "_anchor",
        "_config_indexes",
        "_entries",
        "_packed_through",
        "first_index",
        "last_index",
    )

    #: Index of the first real entry (one past the anchor); kept by every mutation.
    first_index: Index
    #: Index of the last entry (the anchor's when there is none); kept by every mutation.
    last_index: Index

    def __init__(
        self, anchor: Entry, entries: Sequence[Entry] = (), *, linked: bool = False
    ) -> None:
        """``linked``: as for ``append`` (a storage's ``load`` has checked the chain)."""
        self._anchor = anchor
        self._entries: list[Entry] = []
        self.first_index = anchor.index + 1
        self.last_index = anchor.index
        #: Ascending indexes of the CONFIG entries in ``_entries``.
        self._config_indexes: list[Index] = []
        #: Every client entry up to here is packed (``pack_through``).
        self._packed_through: Index = anchor.index
        if linked and len(entries) > _BULK_ENTRIES_MIN:
            self._adopt(entries)
        else:
            self.append(entries, linked=linked)

    def _adopt(self, entries: Sequence[Entry]) -> None:
        """A recovered log, taken whole. Its loader checked every index, term and link
        (``NodeStorage.load``'s contract); the checks here are the ones that cost nothing
        per entry. Appending a million entries one by one, each with its three checks,
        was 0.75 s of a restart (``bench/recovery.py``)."""
        first, last = entries[0], entries[-1]
        anchor = self._anchor
        invariant(
            first.index == anchor.index + 1, "entry %d does not follow the anchor", first.index
        )
        invariant(last.index == anchor.index + len(entries), "recovered entries are not contiguous")
        invariant(first.term >= anchor.term, "entry %d term below the anchor's", first.index)
        self._entries = list(entries)
        self.last_index = last.index
        config = EntryType.CONFIG
        self._config_indexes = [e.index for e in self._entries if e.type is config]

    # --- reading ---------------------------------------------------------------
    @property
    def anchor(self) -> Entry:
        return self._anchor

    @property
    def last_entry(self) -> Entry:
        return self._entries[-1] if self._entries else self._anchor

    @property
    def last_term(self) -> Term:
        return self.last_entry.term

    def _at(self, index: Index) -> Entry | None:
        anchor = self._anchor
        offset = index - anchor.index  # 0: the anchor; k > 0: entries[k - 1]
        if offset == 0:
            return anchor
        if 0 < offset <= len(self._entries):
            return self._entries[offset - 1]
        return None

    def at(self, index: Index) -> Entry | None:
        """The entry at ``index`` (the anchor included), or None when compacted away or
        beyond the end: one lookup where a caller needs both its term and its hash."""
        return self._at(index)

    # term_at and hash_at repeat _at's two range tests rather than call it: together
    # they are asked about 800k times in 30 simulated seeds.
    def term_at(self, index: Index) -> Term | None:
        """The term at ``index``, or None when compacted away or beyond the end."""
        first = self.first_index
        if first <= index <= self.last_index:
            return self._entries[index - first].term
        return self._anchor.term if index == first - 1 else None

    def hash_at(self, index: Index) -> str | None:
        """The chain hash at ``index`` (the anchor's included), or None when unknown."""
        first = self.first_index
        if first <= index <= self.last_index:
            return self._entries[index - first].hash
        return self._anchor.hash if index == first - 1 else None

    def entry_at(self, index: Index) -> Entry:
        """The entry at ``index``; the caller guarantees first_index <= index <= last_index."""
        first = self.first_index
        if not first <= index <= self.last_index:
            invariant(False, "entry %d outside log (%d..%d)", index, first, self.last_index)
        return self._entries[index - first]

    def matches(self, index: Index, term: Term, hash_: str) -> bool:
        """True when this log holds an entry at ``index`` with that term and chain hash."""
        e = self._at(index)
        return e is not None and e.term == term and e.hash == hash_

    def is_up_to_date(self, last_term: Term, last_index: Index) -> bool:
        """Raft §5.4.1: is a log ending at (last_term, last_index) at least as up to date?"""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def entries_from(self, index: Index) -> list[Entry]:
        """Every entry with index >= ``index`` (clamped to the log)."""
        first = self.first_index
        return self._entries[index - first :] if index > first else self._entries[:]

    def slice(
        self, lo: Index, hi: Index, *, count_max: int | None = None, bytes_max: int | None = None
    ) -> list[Entry]:
        """Entries lo..hi inclusive, at most ``count_max`` and about ``bytes_max`` bytes.

        At least one entry is returned when any is in range, so an entry larger
        than ``bytes_max`` still makes progress (as etcd's limitSize does).
        """
        first = self.first_index
        lo = max(lo, first)
        hi = min(hi, self.last_index)
        if lo > hi:
            return []
        if count_max is not None:
            hi = min(hi, lo + count_max - 1)
        out = self._entries[lo - first : hi - first + 1]
        if bytes_max is None:
            return out
        total = 0
        for k, e in enumerate(out):
            total += entry_size_bytes(e)
            if total > bytes_max and k > 0:
                return out[:k]
        return out

    def first_index_of_term(self, term: Term, at_or_before: Index) -> Index:
        """The first index of the run of ``term`` that contains ``at_or_before``."""
        invariant(self.term_at(at_or_before) == term, f"term {term} not at {at_or_before}")
        pos = bisect_left(self._entries, term, key=lambda e: e.term)
        return max(self.first_index + pos, self.first_index)

    def last_index_of_term(self, term: Term) -> Index | None:
        """The last index holding ``term``, or None when the log has no entry of that term."""
        pos = bisect_right(self._entries, term, key=lambda e: e.term)
        if pos > 0 and self._entries[pos - 1].term == term:
            return self.first_index + pos - 1
        if pos == 0 and self._anchor.term == term:
            return self._anchor.index
        return None

    def find_conflict(self, entries: Sequence[Entry]) -> Index | None:
        """Index of the first of ``entries`` that this log lacks or holds differently."""
        for e in entries:
            if self.hash_at(e.index) != e.hash:
                return e.index
        return None

    def last_config_entry(self) -> Entry | None:
        """The newest CONFIG entry in the log, committed or not (dissertation §4.1)."""
        if not self._config_indexes:
            return None
        return self.entry_at(self._config_indexes[-1])

    def last_config_at_or_before(self, index: Index) -> Entry | None:
        """The newest CONFIG entry at or before ``index`` still in the log."""
        pos = bisect_right(self._config_indexes, index)
        return self.entry_at(self._config_indexes[pos - 1]) if pos else None

    # --- writing ----------------------------------------------------------------
    def append(self, entries: Sequence[Entry], *, linked: bool = False) -> bool:
        """Append entries that continue the log: contiguous indexes and a linked chain.

        ``linked=True`` says the caller has just established every link itself (it
        built the entry with ``make_entry``, or checked the batch with
        ``batch_links`` against this log's entry before it), so the hashes are not
        computed a second time; indexes and terms are still checked. Returns whether
        a CONFIG entry was among them.
        """
        configs_before = len(self._config_indexes)
        prev = self.last_entry
        for e in entries:
            invariant(e.index == prev.index + 1, "entry %d does not follow %d", e.index, prev.index)
            invariant(e.term >= prev.term, "entry %d term %d < %d", e.index, e.term, prev.term)
            invariant(
                linked or entry_links(prev.hash, e), "entry %d does not link to the chain", e.index
            )
            self._entries.append(e)
            self.last_index = e.index
            if e.type is EntryType.CONFIG:
                self._config_indexes.append(e.index)
            prev = e
        return len(self._config_indexes) != configs_before

    def pack_through(self, index: Index) -> None:
        """Pack the client entries up to ``index``, which the caller has applied: their
        data becomes canonical JSON bytes the garbage collector never walks
        (``raft/packing.py``). Terms, hashes and what each entry encodes to stay the same."""
        first = self.first_index
        start = max(self._packed_through + 1, first)
        end = min(index, self.last_index)
        entries = self._entries
        for k in range(start - first, end - first + 1):
            entries[k] = packed(entries[k])
        self._packed_through = max(self._packed_through, end)

    def truncate_from(self, index: Index, committed: Index) -> None:
        """Drop every entry with index >= ``index``. Never cuts a committed entry."""
        invariant(index > committed, f"truncating at {index} would cut committed {committed}")
        invariant(index > self._anchor.index, f"truncating at {index} would cut the anchor")
        del self._entries[max(0, index - self.first_index) :]
        del self._config_indexes[bisect_left(self._config_indexes, index) :]
        self.last_index = self._anchor.index + len(self._entries)
        self._packed_through = min(self._packed_through, self.last_index)

    def compact(self, index: Index) -> None:
        """Replace the anchor by a SNAP_DUMMY at ``index`` carrying its term and hash."""
        invariant(self._anchor.index <= index <= self.last_index, f"cannot compact to {index}")
        if index == self._anchor.index:
            return
        e = self.entry_at(index)
        self._entries = self._entries[index - self.first_index + 1 :]
        del self._config_indexes[: bisect_right(self._config_indexes, index)]
        self._anchor = snap_dummy(e.index, e.term, e.hash)
        self.first_index = e.index + 1
        self.last_index = e.index + len(self._entries)


__all__ = ["RaftLog", "entries_size_bytes", "entry_size_bytes"]
