"""``log.jsonl``: one checksummed, hash-chained entry per line (DESIGN §4).

Theory of operation
-------------------
A line is the entry's msgspec JSON encoding ``B = b'{"term":..,"hash":".."}'``
with a CRC-32 of ``B`` spliced in before the closing brace::

    {"term":3,"index":7,"type":"NOOP","data":null,"hash":"ab..","crc":"1c0ffee5"}

The suffix ``,"crc":"xxxxxxxx"}`` has a fixed length, so a reader slices it off
and checks the CRC of the very bytes that were written, without re-encoding.
The line stays plain JSON for anyone reading the file with other tools.

``parse_log`` reads a whole file and checks every line: checksum, index
continuity, the hash chain (``entry_links``) and the anchor (a well-formed
GENESIS of some cluster, or a SNAP_DUMMY, first). Zeros after the last line
are space allocated ahead (below), not a tail to cut. A bad *last* line (torn
write, no newline, bad CRC) is reported as a tail to cut, and so is a bad line
holding a zero byte with anything after it (below); any other bad line before
the end raises ``StorageCorruption``. A last line whose CRC is right but whose
chain link is wrong is not a torn write: it is corruption too.

``LogFile`` appends in batches: ``append`` only encodes into a buffer and
records each line's byte offset; ``sync`` writes the buffer with one write and
one fsync (group commit). The file is allocated ahead (``FileSystem.allocate``:
16 MiB at a time on a real disk) and each batch written in place after the
last line: an fsync after an append that grows a file also commits its new
length and blocks to the file system's journal, one after a write into space
already allocated flushes the data alone. Measured on this project's 2-core
VM with three nodes syncing at once: 210-250 us per fsync appended, 130-165 us
in place (``docs/storage.md``). What that costs: a crash may leave the pages of
an unsynced batch written in any order, so a line may hold a sector that never
reached the disk (zeros: a JSON line never holds a zero byte) with whole
lines after it. Such a line is a torn write, and it and everything after it
are cut: nothing after the last fsync was acknowledged. (A disk that zeroes a
sector of synced lines would lose them the same way; etcd's WAL, allocated
ahead in 64 MB segments, makes the same call.)

``truncate_from`` is an ftruncate at a recorded offset. A truncation is made
durable (fsync) *before* new bytes are written over its end: otherwise a crash
could leave new bytes in the middle of old ones (size not yet cut, data block
already rewritten), which would read as corruption in the middle of the log
rather than a torn tail.
"""

from __future__ import annotations

import bisect
import hashlib
import posixpath
import zlib
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from resonetics.decode_errors import UNREADABLE
from resonetics.errors import StorageCorruption, invariant
from resonetics.gc_pause import gc_paused
from resonetics.raft.entry import Entry, EntryType, entry_links, is_genesis
from resonetics.raft.packing import RawEntry, from_raw, recanonical
from resonetics.raft.types import Index
from resonetics.storage.fs import FileSystem, atomic_write
from resonetics.storage.log_seal import SEAL_EVERY_BYTES, Seal, write_seal

#: Sorted keys: a line's ``data`` is then the very bytes the chain hash covers, so a
#: restart checks the chain and keeps client data packed without re-encoding it.
_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(Entry)
_NON_NEGATIVE = msgspec.Meta(ge=0)


class _LogLine(RawEntry, frozen=True, kw_only=True, gc=False):
    """A log line as ``parse_log`` decodes it: client data left as the line's bytes
    (``from_raw``), a negative term or index refused by the decoder itself (a check
    in C rather than a second loop over a million lines)."""

    term: Annotated[int, _NON_NEGATIVE]
    index: Annotated[int, _NON_NEGATIVE]


_LINE_DECODER = msgspec.json.Decoder(_LogLine)
#: The encoder of ``raft.entry.canonical_body`` (sorted keys, no whitespace).
_CANONICAL = msgspec.json.Encoder(order="sorted")
_CRC_HEAD = b',"crc":"'
_NEWLINE_BYTE = ord("\n")
#: len(b',"crc":"') + 8 hex digits + len(b'"}')
CRC_SUFFIX_BYTES = len(_CRC_HEAD) + 8 + 2


class LineError(ValueError):
    """One line fails its checks; ``reason`` says which."""


def encode_line(entry: Entry) -> bytes:
    """The bytes of one log line, newline included."""
    body = _ENCODER.encode(entry)
    return body[:-1] + _CRC_HEAD + b"%08x" % zlib.crc32(body) + b'"}\n'


def decode_line(line: bytes) -> Entry:
    """Check and decode one line (without its newline); ``LineError`` if bad."""
    if len(line) <= CRC_SUFFIX_BYTES or line[-CRC_SUFFIX_BYTES:-10] != _CRC_HEAD:
        raise LineError("line has no checksum (torn or not a log line)")
    if line[-2:] != b'"}':
        raise LineError("line does not end with its checksum")
    body = line[:-CRC_SUFFIX_BYTES] + b"}"
    if b"%08x" % zlib.crc32(body) != line[-10:-2]:
        raise LineError("checksum mismatch")
    try:
        entry = _DECODER.decode(body)
    except UNREADABLE as exc:
        raise LineError(f"not a valid entry: {exc}") from None
    if entry.term < 0 or entry.index < 0:
        raise LineError("negative term or index")
    return entry


@dataclass(slots=True)
class ParsedLog:
    """A log file's good lines, in order, anchor first."""

    entries: list[Entry] = field(default_factory=list)
    #: Byte offset of each entry's line in the file.
    offsets: list[int] = field(default_factory=list)
    #: Bytes of whole good lines; the file is cut here when ``torn`` is set.
    valid_end: int = 0
    #: Why the last line was cut (a crash during an append), or None.
    torn: str | None = None
    #: 1-based line number of the torn line, when there is one.
    torn_line: int | None = None
    #: The file's length: its lines, then zeros allocated ahead of them.
    size: int = 0
    #: Lines taken on the log's seal (``storage/log_seal.py``) rather than checked one
    #: by one, and the bytes they span (0: no seal, or one that did not hold).
    sealed_lines: int = 0
    sealed_bytes: int = 0
    #: SHA-256 (a ``hashlib`` object) of the file's bytes up to ``valid_end``.
    digest: Any = None


def parse_log(data: bytes, path: str, seal: Seal | None = None) -> ParsedLog:
    """Check every line of a log file; raise ``StorageCorruption`` on a bad line
    before the end or a broken chain anywhere.

    With a ``seal`` whose bytes the file's first bytes hash to, the lines it spans
    are taken without their CRCs and links (``storage/log_seal.py``); checks start
    at the first line after them.

    Lines are checked for their CRC in place (``_scan_lines``: no copy of a line),
    then the good ones are decoded by one msgspec call straight from the file's
    bytes (a per-line decode costs more in call overhead than in decoding, and a
    copy of every line costs a restart as much again in page faults); a line that
    fails to decode is found again line by line.
    """
    with gc_paused():  # millions of objects, no cycles: see resonetics/gc_pause.py
        return _parse(data, path, seal)


def _parse(data: bytes, path: str, seal: Seal | None) -> ParsedLog:
    parsed = ParsedLog(size=len(data))
    trusted, digest = _sealed_prefix(data, seal)
    offsets, end, bad = _scan_lines(data, trusted)
    if bad is not None:
        _bad_line(parsed, data, offsets, bad, path)
    elif not _zeros_from(data, end):
        parsed.torn, parsed.torn_line = "last line has no newline (torn write)", len(offsets) + 1
    entries = _decode_all(data, offsets, end, path)
    sealed_lines = bisect.bisect_left(offsets, trusted) if trusted else 0
    if entries:
        _check_link(parsed, entries[0], path, 1)
        bad_link, relinked = _first_unlinked(entries, max(1, sealed_lines))
        if relinked:
            digest = None  # lines from before sorted keys: never sealed (see ``LogFile``)
        if bad_link is not None:
            parsed.entries = entries[:bad_link]
            _check_link(parsed, entries[bad_link], path, bad_link + 1)
            invariant(False, "line %d fails the fast chain check only", bad_link + 1)
    parsed.entries = entries
    parsed.offsets = offsets
    parsed.valid_end = end
    parsed.sealed_lines, parsed.sealed_bytes = sealed_lines, trusted
    if digest is not None:
        digest.update(memoryview(data)[trusted:end])
    parsed.digest = digest
    return parsed


def _sealed_prefix(data: bytes, seal: Seal | None) -> tuple[int, Any]:
    """``(n, digest)``: the file's first ``n`` bytes are the ones ``seal`` covers (0
    when there is no seal or it does not hold), and ``digest`` the SHA-256 of them."""
    n = seal.bytes if seal is not None else 0
    if seal is None or not 0 < n <= len(data) or data[n - 1] != _NEWLINE_BYTE:
        return 0, hashlib.sha256()
    digest = hashlib.sha256(memoryview(data)[:n])  # releases the GIL: one C call
    if digest.hexdigest() != seal.sha256:
        return 0, hashlib.sha256()
    return n, digest


def _scan_lines(data: bytes, trusted: int = 0) -> tuple[list[int], int, int | None]:
    """``(offsets, end, bad)``: the byte offset of each line whose CRC is right, up to
    the first that is not; the end of the last of them; the first bad line's start
    (None when every newline-terminated line is good). The lines of the first
    ``trusted`` bytes (whole lines, sealed) are only found, not checked.

    One loop over the file's bytes with everything bound to locals: the CRC of a
    line's body (the line without its CRC field, closed by ``}``) is taken from a
    memoryview, so no line is copied. ``decode_line`` checks one line the same way.
    """
    view = memoryview(data)
    find, crc32, head = data.find, zlib.crc32, _CRC_HEAD
    suffix = CRC_SUFFIX_BYTES
    offsets: list[int] = []
    add = offsets.append
    pos = 0
    while pos < trusted:
        add(pos)
        pos = find(b"\n", pos) + 1
    while (nl := find(b"\n", pos)) >= 0:
        body_end = nl - suffix
        # The whole suffix a good line ends with, built from the CRC of its body and
        # compared once: a fifth less of a 1 M-line restart's scan than checking its
        # three parts apart (the CRC field, its head, the closing brace).
        if (
            body_end <= pos
            or b'%s%08x"}' % (head, crc32(b"}", crc32(view[pos:body_end]))) != data[body_end:nl]
        ):
            return offsets, pos, pos
        add(pos)
        pos = nl + 1
    return offsets, pos, None


def _first_unlinked(entries: list[Entry], start: int = 1) -> tuple[int | None, bool]:
    """Position of the first entry from ``start`` (>= 1: after the anchor) that breaks
    a rule of ``_check_link`` (index, type, term or hash) with the one before it,
    else None; and whether any entry was relinked (below).

    The same rules as ``_check_link`` in one loop with everything bound to locals:
    at a million entries the per-entry calls of the plain loop cost more than the
    hashing itself. ``_check_link`` names the failure once this finds it.

    A packed entry is hashed over its line's bytes, which are canonical when the
    line was written with sorted keys (``encode_line``). A line written before
    that holds the same data in another key order: such an entry is hashed again
    over its canonical encoding and, when that links, kept with canonical bytes
    (``_relinked``), so packed data is always the bytes the chain covers.
    """
    sha256 = hashlib.sha256
    encode = _CANONICAL.encode
    anchors = (EntryType.GENESIS, EntryType.SNAP_DUMMY)
    prev = entries[start - 1]
    prev_index, prev_term, prev_hash = prev.index, prev.term, prev.hash
    relinked_any = False
    for pos in range(start, len(entries)):
        e = entries[pos]
        if e.index != prev_index + 1 or e.term < prev_term or e.type in anchors:
            return pos, relinked_any
        h = sha256(prev_hash.encode("ascii"))
        h.update(b"\n")
        # canonical_body (raft/entry.py), inlined.
        h.update(encode([e.term, e.index, str(e.type), e.data]))
        if h.hexdigest() != e.hash:
            relinked = _relinked(prev_hash, e)
            if relinked is None:
                return pos, relinked_any
            entries[pos] = relinked
            relinked_any = True
        prev_index, prev_term, prev_hash = e.index, e.term, e.hash
    return None, relinked_any


def _relinked(prev_hash: str, entry: Entry) -> Entry | None:
    """``entry`` with its packed data re-encoded canonically, if that links to
    ``prev_hash`` (a line written with unsorted keys); else None."""
    if type(entry.data) is not msgspec.Raw:
        return None
    again = recanonical(entry)  # the line decoded, so its data decodes too
    return again if entry_links(prev_hash, again) else None


def _zeros_from(data: bytes, start: int) -> bool:
    """Whether ``data[start:]`` is all zero bytes (space allocated ahead), or empty."""
    return data.count(0, start) == len(data) - start


def _bad_line(parsed: ParsedLog, data: bytes, offsets: list[int], start: int, path: str) -> None:
    """The line at byte ``start`` failed its CRC: a torn tail if it is the file's last
    (nothing but allocated zeros after its newline) or holds a zero byte (a sector
    of it never written: the crash came before its fsync, so nothing after it was
    synced either), else corruption."""
    lineno = len(offsets) + 1
    nl = data.find(b"\n", start)
    line = data[start:nl]
    reason = _line_reason(line)
    if _zeros_from(data, nl + 1):
        parsed.torn, parsed.torn_line = reason, lineno
        return
    if 0 in line:
        parsed.torn = f"{reason}, with bytes never written; cut there with all after it"
        parsed.torn_line = lineno
        return
    index = _decode_all(data, offsets, start, path)[-1].index + 1 if offsets else None
    raise StorageCorruption(path, reason, line=lineno, index=index)


def _line_reason(line: bytes) -> str:
    try:
        decode_line(line)
    except LineError as exc:
        return str(exc)
    return "bad line"  # pragma: no cover - _scan_lines and decode_line agree


def _decode_all(data: bytes, offsets: list[int], end: int, path: str) -> list[Entry]:
    """Decode the CRC-checked lines ``data[:end]`` at once (the CRC field is not an
    entry field: msgspec skips it); name the first bad one if any.

    A client entry keeps its data packed: a ``msgspec.Raw`` of the line's own bytes
    (``raft/packing.py``). Building the dicts of a million commands, encoding them
    again for the chain check and packing them again after the replay were a third
    of a restart; the replay decodes each command once, straight into its type.
    """
    try:
        lines = _LINE_DECODER.decode_lines(memoryview(data)[:end])
    except UNREADABLE:
        lines = []
        ends = [*offsets[1:], end]
        for lineno, (start, stop) in enumerate(zip(offsets, ends, strict=True), start=1):
            try:
                lines.append(_LINE_DECODER.decode(data[start : stop - 1]))
            except UNREADABLE as exc:
                index = lines[-1].index + 1 if lines else None
                reason = f"not a valid entry: {exc}"
                raise StorageCorruption(path, reason, line=lineno, index=index) from None
    return [from_raw(line) for line in lines]


def _check_link(parsed: ParsedLog, entry: Entry, path: str, lineno: int) -> None:
    """The anchor rule for line 1, index continuity and the hash chain after it."""
    if not parsed.entries:
        # Which cluster's GENESIS it must be is meta.json's to say (node_storage).
        if entry.type is EntryType.GENESIS and not is_genesis(entry):
            raise StorageCorruption(path, "GENESIS anchor differs", line=1, index=entry.index)
        if entry.type not in (EntryType.GENESIS, EntryType.SNAP_DUMMY):
            raise StorageCorruption(
                path, f"first line is {entry.type}, not an anchor", line=1, index=entry.index
            )
        return
    prev = parsed.entries[-1]
    reason = None
    if entry.index != prev.index + 1:
        reason = f"index {entry.index} does not follow {prev.index}"
    elif entry.type in (EntryType.GENESIS, EntryType.SNAP_DUMMY):
        reason = f"{entry.type} entry after the first line"
    elif entry.term < prev.term:
        reason = f"term {entry.term} is lower than the previous entry's {prev.term}"
    elif not entry_links(prev.hash, entry):
        reason = "hash chain broken: entry does not link to the previous one"
    if reason is not None:
        raise StorageCorruption(path, reason, line=lineno, index=entry.index)


#: The file a compaction that keeps entries behind a snapshot is written to before it
#: replaces the log (a ``.tmp`` name: a leftover is removed at start).
COMPACTING_SUFFIX = ".compacting.tmp"


#: A file that keeps entries behind a snapshot is compacted once that drops this many
#: times the bytes it keeps (copies): at most a quarter of the log is ever copied.
COMPACTION_DROP_RATIO = 4


@dataclass(frozen=True, slots=True)
class PreparedCompaction:
    """The head of a compacted log, written and synced by ``prepare_compaction`` off the
    disk thread: ``anchor``'s line, then the old file's bytes ``[start, end)`` (whole
    lines, committed: never cut). ``first`` is the old offsets' index of the line at
    ``start``; ``head`` the length of the anchor's line."""

    anchor: Entry
    first: int
    start: int
    end: int
    head: int
    #: SHA-256 (``hashlib``) of the prepared file's bytes, or None when the log is
    #: not sealed (``LogFile``).
    digest: Any = None


class LogFile:
    """Appends, truncations and compaction of one ``log.jsonl``.

    Invariant: ``offsets[i]`` is the byte offset of the line of index
    ``first_index + i``; ``len(offsets) >= 1`` (the anchor).
    """

    def __init__(self, fs: FileSystem, path: str) -> None:
        self._fs = fs
        self.path = path
        self.first_index: Index = 0
        self._offsets: list[int] = []
        #: Logical length of the file on disk (after any pending truncation).
        self._file_end = 0
        #: Its length on disk: the lines, then zeros allocated ahead of them.
        self._allocated = 0
        self._truncate_to: int | None = None
        self._buffer = bytearray()
        #: SHA-256 (``hashlib``) of the file's bytes ``[0, _file_end)``, all synced; None
        #: when not known (a truncation of synced lines) or when the file holds lines
        #: from before sorted keys, whose links a restart must see: no seal is written.
        self._digest: Any = None
        #: The bytes the seal on disk covers (``storage/log_seal.py``).
        self._sealed_end = 0

    @property
    def last_index(self) -> Index:
        return self.first_index + len(self._offsets) - 1

    def adopt(self, parsed: ParsedLog) -> None:
        """Take over a parsed file, cutting its torn tail durably first."""
        invariant(bool(parsed.entries), "adopt() needs an anchor line")
        allocated = parsed.size
        if parsed.torn is not None:
            self._fs.truncate(self.path, parsed.valid_end)
            self._fs.fsync(self.path)
            allocated = parsed.valid_end
        self._reset(
            parsed.entries[0].index, parsed.offsets, parsed.valid_end, parsed.digest, allocated
        )
        self._sealed_end = parsed.sealed_bytes

    def _reset(
        self,
        first_index: Index,
        offsets: list[int],
        end: int,
        digest: Any,
        allocated: int | None = None,
    ) -> None:
        self.first_index = first_index
        self._offsets = offsets
        self._file_end = end
        self._allocated = end if allocated is None else allocated
        self._truncate_to = None
        self._buffer = bytearray()
        self._digest = digest
        self._sealed_end = 0

    def seal(self) -> None:
        """Record the seal of everything synced (``storage/log_seal.py``) if it grew
        since the last one; nothing when the file's digest is not known."""
        if self._digest is not None and self._file_end > self._sealed_end:
            write_seal(self._fs, self.path, Seal(self._file_end, self._digest.hexdigest()))
            self._sealed_end = self._file_end

    def rewrite(self, anchor: Entry, tail: bytes = b"") -> None:
        """Replace the file by ``anchor`` + ``tail`` (whole lines), atomically."""
        head = encode_line(anchor)
        atomic_write(self._fs, self.path, head + tail)
        offsets = [0]
        pos = len(head)
        end = len(head) + len(tail)
        while pos < end:
            offsets.append(pos)
            pos = tail.index(b"\n", pos - len(head)) + len(head) + 1
        # ``tail`` is lines of this file: a file holding lines from before sorted keys
        # (no digest) is not sealed after it is rewritten either.
        digest = hashlib.sha256(head + tail) if self._digest is not None or not tail else None
        self._reset(anchor.index, offsets, end, digest)
        self.seal()

    def append(self, entries: list[Entry]) -> None:
        """Buffer entries after the last one; durable at the next ``sync``."""
        for entry in entries:
            invariant(
                entry.index == self.last_index + 1,
                "append of index %d after %d",
                entry.index,
                self.last_index,
            )
            self._offsets.append(self._file_end + len(self._buffer))
            self._buffer += encode_line(entry)

    def truncate_from(self, index: Index) -> None:
        """Drop every entry with index >= ``index``; durable at the next ``sync``."""
        invariant(index > self.first_index, f"truncate_from({index}) would cut the anchor")
        k = index - self.first_index
        if k >= len(self._offsets):
            return
        offset = self._offsets[k]
        del self._offsets[k:]
        if offset >= self._file_end:
            del self._buffer[offset - self._file_end :]
            return
        self._buffer = bytearray()
        self._file_end = offset
        self._truncate_to = offset
        # Synced lines cut: the digest no longer matches the file, and rebuilding it
        # would read the file again. No seal until the next rewrite or restart (rare:
        # a follower's uncommitted entries replaced by a new leader's).
        self._digest = None

    def sync(self) -> None:
        """Make every earlier append and truncation durable."""
        if self._truncate_to is not None:
            self._fs.truncate(self.path, self._truncate_to)
            self._fs.fsync(self.path)
            self._allocated = self._truncate_to
            self._truncate_to = None
        if self._buffer:
            data = bytes(self._buffer)
            end = self._file_end + len(data)
            if end > self._allocated:
                self._allocated = self._fs.allocate(self.path, end)
            self._fs.write_at(self.path, self._file_end, data)
            self._buffer = bytearray()
            self._file_end += len(data)
            self._fs.fsync(self.path)
            if self._digest is not None:
                self._digest.update(data)
                if self._file_end - self._sealed_end >= SEAL_EVERY_BYTES:
                    self.seal()

    def compaction_pays(self, index: Index) -> bool:
        """Whether starting the file at ``index`` drops ``COMPACTION_DROP_RATIO`` times
        the bytes it keeps: a compaction that keeps entries behind a snapshot copies what
        it keeps (see ``FileNodeStorage.compact_to_snapshot``)."""
        k = index - self.first_index
        if not 0 < k < len(self._offsets):
            return False
        cut = self._offsets[k]
        return cut >= COMPACTION_DROP_RATIO * (self._file_end + len(self._buffer) - cut)

    def prepare_compaction(self, anchor: Entry, through: Index) -> PreparedCompaction | None:
        """Write the compacted log's head off the disk thread: ``anchor`` (a SNAP_DUMMY
        for an entry this log holds) and the lines after it up to ``through``, an index
        already durable and committed (a snapshot's: never truncated). Only those lines'
        offsets are read, which appends and truncations beyond the commit index leave as
        they are, so the disk thread may go on appending meanwhile. None when ``anchor``
        is not strictly between the first line and ``through``, or not this log's entry.

        Why: ``compact`` rewrites everything it keeps on the disk thread, log appends
        waiting behind it. Keeping 1,000 entries behind each snapshot that was about 10 MB
        at 256 writes in flight, and the p99 of writes doubled (``bench``, 16 to 35 ms).
        """
        offsets = self._offsets
        k, k_through = anchor.index - self.first_index, through - self.first_index
        if not 0 < k < k_through < len(offsets):
            return None
        at, start, last = offsets[k], offsets[k + 1], offsets[k_through]
        if last >= self._file_end:  # not written yet: left to ``compact``
            return None
        data = self._fs.read_from(self.path, at)
        newline = data.find(b"\n", last - at)
        if newline < 0:
            return None
        here = decode_line(data[: start - at - 1])
        if here.hash != anchor.hash or here.term != anchor.term:
            return None
        end = newline + 1 + at
        head = encode_line(anchor)
        tmp = self.path + COMPACTING_SUFFIX
        prepared = head + data[start - at : end - at]
        self._fs.write(tmp, prepared)
        self._fs.fsync(tmp)
        digest = hashlib.sha256(prepared) if self._digest is not None else None
        return PreparedCompaction(anchor, k + 1, start, end, len(head), digest)

    def finish_compaction(self, prepared: PreparedCompaction) -> None:
        """On the disk thread, after ``prepare_compaction``: add the lines appended
        since (the few after the snapshot), then replace the log by the prepared file."""
        self.sync()
        first, start, end = prepared.first, prepared.start, prepared.end
        invariant(
            prepared.anchor.index == self.first_index + first - 1
            and first < len(self._offsets)
            and self._offsets[first] == start
            and self._file_end >= end,
            "the log changed under a prepared compaction",
        )
        tmp = self.path + COMPACTING_SUFFIX
        tail = self._fs.read_from(self.path, end)[: self._file_end - end]
        if tail:
            self._fs.append(tmp, tail)
        self._fs.fsync(tmp)
        self._fs.replace(tmp, self.path)
        self._fs.fsync_dir(posixpath.dirname(self.path) or ".")
        shift = prepared.head - start
        offsets = [0, *(offset + shift for offset in self._offsets[first:])]
        digest = prepared.digest if self._digest is not None else None
        if digest is not None:
            digest.update(tail)
        self._reset(prepared.anchor.index, offsets, self._file_end + shift, digest)
        self.seal()

    def compact(self, anchor: Entry) -> None:
        """Start the log at ``anchor`` (a SNAP_DUMMY): keep the tail after it when
        the entry at its index has its hash, else drop the whole log (Raft §7)."""
        self.sync()
        tail = b""
        k = anchor.index - self.first_index
        if 0 <= k < len(self._offsets):
            # Only from the anchor's line on: the lines before it are dropped unread
            # (tens of MB between two snapshots of a large state).
            start = self._offsets[k]
            data = self._fs.read_from(self.path, start)
            last = k + 1 == len(self._offsets)
            line_end = self._file_end - start if last else self._offsets[k + 1] - start
            here = decode_line(data[: line_end - 1])
            if here.hash == anchor.hash and here.term == anchor.term:
                tail = data[line_end : self._file_end - start]
        self.rewrite(anchor, tail)


__all__ = [
    "COMPACTING_SUFFIX",
    "CRC_SUFFIX_BYTES",
    "LineError",
    "LogFile",
    "ParsedLog",
    "PreparedCompaction",
    "decode_line",
    "encode_line",
    "parse_log",
]
