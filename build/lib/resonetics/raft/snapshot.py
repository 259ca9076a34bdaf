"""InstallSnapshot streaming, both ends, as pure state (Raft §7, dissertation §5.4).

Theory of operation
-------------------
A snapshot travels as one *payload*: the membership at its index as a JSON
line, then the state machine's bytes. ``InstallSnapshot`` carries the index,
term and chain hash itself, and ``checksum`` (SHA-256 hex of the whole payload)
and ``total_bytes`` in every chunk, so a receiver can tell one stream from
another and verify the assembled payload before anything is installed.

* ``SnapshotSend`` (leader, one per follower in SNAPSHOT state): sends chunks of
  ``chunk_bytes`` from ``next_offset`` while at most ``window`` chunks are
  unacknowledged, so a large snapshot never crowds out heartbeats. Every answer
  names the offset the follower expects next; the leader resumes from there, so
  a lost chunk costs one resend, not the whole stream. Silence for a stall
  window rewinds to the last acknowledged offset.
* ``SnapshotReceive`` (follower): accepts only the chunk at the offset it
  expects (anything else is answered with that offset), and on the last chunk
  checks the checksum. A chunk of another stream (new index or checksum)
  restarts reception only when it starts at offset 0.

Nothing here does I/O or reads a clock; the node calls these from ``step`` and
``tick``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Protocol

import msgspec

from resonetics.errors import invariant
from resonetics.raft.membership import Membership
from resonetics.raft.messages import InstallSnapshot
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.types import Index, NodeId, Term

#: The longest membership line a snapshot payload may start with (it names each member
#: and its addresses: a few hundred bytes each).
_HEAD_BYTES_MAX = 1 << 20


def encode_payload(snapshot: Snapshot) -> bytes:
    """The streamed form of a snapshot: membership JSON line, then the state bytes
    (``OutgoingSnapshot`` cuts its chunks from the two without joining them)."""
    return head_line(snapshot.meta.membership) + snapshot.data


def head_line(membership: Membership) -> bytes:
    """A payload's first line, newline included."""
    return msgspec.json.encode(membership) + b"\n"


def decode_payload(
    payload: bytes, index: Index, term: Term, hash_: str, *, signer: str = "", sig: str = ""
) -> Snapshot | None:
    """Rebuild the Snapshot from a verified payload; None if it is malformed."""
    head, sep, data = payload.partition(b"\n")
    if not sep:
        return None
    return snapshot_of(head, data, index, term, hash_, signer=signer, sig=sig)


def snapshot_of(
    head: bytes,
    data: bytes,
    index: Index,
    term: Term,
    hash_: str,
    *,
    signer: str = "",
    sig: str = "",
) -> Snapshot | None:
    """The Snapshot of a payload already split at its first newline (``head``: the
    membership JSON); None if the head is malformed."""
    try:
        membership = msgspec.json.decode(head, type=Membership)
    except msgspec.MsgspecError:
        return None
    meta = SnapshotMeta(
        last_included_index=index,
        last_included_term=term,
        last_included_hash=hash_,
        membership=membership,
        signer=signer,
        sig=sig,
    )
    return Snapshot(meta=meta, data=data)


def checksum_of(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def stream_checksum(snapshot: Snapshot) -> str:
    """``checksum_of(encode_payload(snapshot))``, hashed in two parts, never joined.

    The runtime makes it when a snapshot's file is written, on the snapshot thread
    (hashlib lets go of the GIL over large buffers), so that a leader's first stream
    does not hash the state on its loop (about 90 ms at 160 MB here).
    """
    digest = hashlib.sha256(head_line(snapshot.meta.membership))
    digest.update(snapshot.data)
    return digest.hexdigest()


class OutgoingSnapshot:
    """A leader's latest snapshot, shared by every stream.

    The payload is never built whole: chunks are cut from the membership line and the
    state as they are (``piece``), and the checksum is made on first use, a SHA-256 of
    the whole state that most nodes holding a snapshot (every restart hands the
    recovered one here) never need. A copy of the state to build the payload cost a
    leader's loop about 50 ms at 160 MB when a stream started. A snapshot this node
    installed comes with the checksum its stream was verified against. The values are
    pure functions of the snapshot, so the simulator's runs do not change.
    """

    __slots__ = ("_checksum", "_head", "_payload", "_snapshot", "meta")

    def __init__(
        self,
        meta: SnapshotMeta,
        payload: bytes | None = None,
        checksum: str | None = None,
        *,
        snapshot: Snapshot | None = None,
    ) -> None:
        """Given ``payload`` (and its ``checksum``, or it is computed), or the
        ``snapshot`` to encode on first use (``of``)."""
        invariant(payload is not None or snapshot is not None, "outgoing snapshot of nothing")
        self.meta = meta
        #: Held until the payload is made, then dropped (the payload holds the state).
        self._snapshot = snapshot
        self._payload = payload
        self._checksum = checksum
        #: The payload's first line, newline included (made on first use).
        self._head: bytes | None = None

    @classmethod
    def of(cls, snapshot: Snapshot, checksum: str | None = None) -> OutgoingSnapshot:
        """``checksum``: the payload's, when already known (a stream verified it)."""
        return cls(snapshot.meta, checksum=checksum, snapshot=snapshot)

    @property
    def payload(self) -> bytes:
        """The whole payload, built (a copy of the state) each time it is asked for when
        it was not given: streams use ``piece``."""
        if self._payload is not None:
            return self._payload
        assert self._snapshot is not None
        return encode_payload(self._snapshot)

    @property
    def size(self) -> int:
        if self._payload is not None:
            return len(self._payload)
        assert self._snapshot is not None
        return len(self._head_line()) + len(self._snapshot.data)

    def piece(self, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of the payload."""
        if self._payload is not None:
            return self._payload[start:end]
        assert self._snapshot is not None
        head, data = self._head_line(), self._snapshot.data
        cut = len(head)
        if end <= cut:
            return head[start:end]
        if start >= cut:
            return data[start - cut : end - cut]
        return head[start:] + data[: end - cut]

    @property
    def unhashed(self) -> Snapshot | None:
        """The snapshot, while its stream checksum is still to be made (one this node
        restarted with): for the runtime to hash off the loop (``know_checksum``)."""
        return self._snapshot if self._checksum is None else None

    def know_checksum(self, checksum: str) -> None:
        """``stream_checksum`` of this snapshot, made elsewhere (the first one kept)."""
        if self._checksum is None:
            self._checksum = checksum

    @property
    def checksum(self) -> str:
        if self._checksum is None:
            if self._payload is not None:
                self._checksum = checksum_of(self._payload)
            else:
                assert self._snapshot is not None
                self._checksum = stream_checksum(self._snapshot)
        return self._checksum

    def _head_line(self) -> bytes:
        if self._head is None:
            assert self._snapshot is not None
            self._head = head_line(self._snapshot.meta.membership)
        return self._head

    @property
    def index(self) -> Index:
        return self.meta.last_included_index


class SnapshotSend:
    """One stream from the leader to one follower; see the module docstring."""

    __slots__ = (
        "acked_offset",
        "chunk_bytes",
        "in_flight",
        "next_offset",
        "rewound_to",
        "snap",
        "stall_ticks",
        "window",
    )

    def __init__(self, snap: OutgoingSnapshot, chunk_bytes: int, window: int) -> None:
        self.snap = snap
        self.chunk_bytes = max(1, chunk_bytes)
        #: Offsets of chunks sent and not yet answered, oldest first, at most ``window``.
        self.in_flight: list[int] = []
        self.window = max(1, window)
        self.next_offset = 0
        self.acked_offset = 0
        #: The offset the last duplicate answer rewound to: further duplicates of it
        #: are ignored (each would resend the whole window again and, with reordered
        #: chunks, multiply the traffic; the stall timer still covers a lost resend).
        self.rewound_to: int | None = None
        self.stall_ticks = 0

    @property
    def total(self) -> int:
        return self.snap.size

    def next_chunks(self, src: NodeId, dst: NodeId, term: Term) -> list[InstallSnapshot]:
        """Chunks that may be sent now (window permitting); records them as in flight."""
        out: list[InstallSnapshot] = []
        while len(self.in_flight) < self.window and (
            self.next_offset < self.total or (self.total == 0 and not self.in_flight)
        ):
            out.append(self._chunk(src, dst, term, self.next_offset))
            self.in_flight.append(self.next_offset)
            self.next_offset = min(self.total, self.next_offset + self.chunk_bytes)
            if self.total == 0 or self.next_offset >= self.total:
                break
        return out

    def _chunk(self, src: NodeId, dst: NodeId, term: Term, offset: int) -> InstallSnapshot:
        end = min(self.total, offset + self.chunk_bytes)
        meta = self.snap.meta
        return InstallSnapshot(
            src=src,
            dst=dst,
            term=term,
            leader_id=src,
            last_included_index=meta.last_included_index,
            last_included_term=meta.last_included_term,
            last_included_hash=meta.last_included_hash,
            offset=offset,
            data=base64.b64encode(self.snap.piece(offset, end)).decode("ascii"),
            done=end >= self.total,
            checksum=self.snap.checksum,
            total_bytes=self.total,
            signer=meta.signer,
            sig=meta.sig,
        )

    def on_response(self, next_offset: int) -> None:
        """The follower expects ``next_offset``: free the chunks it has, maybe resend.

        An answer that does not move the follower forward (a duplicate, or the
        answer to a chunk that arrived past a gap) means the chunk at that offset
        is lost: resume from it, as TCP does on a duplicate ack. An offset below
        what was acknowledged is a late answer and is ignored, except 0: the
        follower has no partial copy (it restarted, or a checksum failed).
        """
        self.stall_ticks = 0
        x = min(max(0, next_offset), self.total)
        if 0 < x < self.acked_offset:
            return
        advanced = x > self.acked_offset
        if not advanced and x == self.rewound_to:
            return
        self.acked_offset = x
        self.in_flight = [o for o in self.in_flight if o >= x]
        if not advanced or not self.in_flight:
            self.rewound_to = None if advanced else x
            self.next_offset = x
            self.in_flight = []
        else:
            self.rewound_to = None

    def tick_stalled(self, stall_ticks_max: int) -> bool:
        """No answer for a whole window: rewind to the last acknowledged offset."""
        if not self.in_flight:
            return False
        self.stall_ticks += 1
        if self.stall_ticks < stall_ticks_max:
            return False
        self.stall_ticks = 0
        self.in_flight = []
        self.next_offset = self.acked_offset
        return True


@dataclass(slots=True)
class ReceiveResult:
    """What one chunk did: the offset to answer with, and the snapshot once complete."""

    next_offset: int
    ok: bool = True
    snapshot: Snapshot | None = None


class Spool(Protocol):
    """Where a follower keeps the chunks of a snapshot it is receiving.

    The core only appends verified-in-order chunks and reads the whole back once the
    last one arrives; the runtime decides where the bytes live (a temp file beside the
    node's data on a server, memory in tests and the simulator), so the core does no
    I/O of its own and a large snapshot need not sit in memory while it streams in.
    """

    @property
    def size(self) -> int: ...

    def append(self, data: bytes) -> None: ...

    def read(self) -> bytes: ...

    def read_from(self, offset: int) -> bytes:
        """The bytes from ``offset`` to the end."""
        ...

    def discard(self) -> None: ...


class MemorySpool:
    """A ``Spool`` in memory."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def size(self) -> int:
        return len(self._buffer)

    def append(self, data: bytes) -> None:
        self._buffer += data

    def read(self) -> bytes:
        return bytes(self._buffer)

    def read_from(self, offset: int) -> bytes:
        return bytes(memoryview(self._buffer)[offset:])

    def discard(self) -> None:
        self._buffer = bytearray()


class SnapshotReceive:
    """A follower's partly received snapshot (the payload so far, in a ``Spool``)."""

    __slots__ = (
        "_digest",
        "_head",
        "_head_end",
        "assembled",
        "checksum",
        "index",
        "last_offset",
        "sig",
        "signer",
        "spool",
        "term",
        "total",
    )

    def __init__(self, msg: InstallSnapshot, spool: Spool | None = None) -> None:
        self.index: Index = msg.last_included_index
        self.term: Term = msg.last_included_term
        self.checksum = msg.checksum
        self.total = msg.total_bytes
        self.signer = msg.signer
        self.sig = msg.sig
        self.spool: Spool = spool if spool is not None else MemorySpool()
        #: The whole snapshot, verified, while the runtime reads its state (``RaftNode``'s
        #: ``snapshot_prepared``), and the offset of its last chunk.
        self.assembled: Snapshot | None = None
        self.last_offset = 0
        #: SHA-256 of the chunks taken so far, in order: the checksum is known when the
        #: last one arrives, without hashing the whole payload in one step on the loop.
        self._digest = hashlib.sha256()
        #: The payload's first line (the membership JSON) and the offset of its newline
        #: (-1 until it has arrived).
        self._head = bytearray()
        self._head_end = -1

    def same_stream(self, msg: InstallSnapshot) -> bool:
        return (
            msg.last_included_index == self.index
            and msg.last_included_term == self.term
            and msg.checksum == self.checksum
            and msg.total_bytes == self.total
            and msg.signer == self.signer
            and msg.sig == self.sig
        )

    def accept(self, msg: InstallSnapshot) -> ReceiveResult:
        """Take the chunk if it is the one expected; verify on the last one."""
        have = self.spool.size
        if msg.offset != have:
            return ReceiveResult(have)
        try:
            chunk = base64.b64decode(msg.data, validate=True)
        except (binascii.Error, ValueError):
            return ReceiveResult(have, ok=False)
        if have + len(chunk) > self.total:
            return ReceiveResult(0, ok=False)
        self.spool.append(chunk)
        self._digest.update(chunk)
        if self._head_end < 0 and not self._take_head(chunk):
            return ReceiveResult(0, ok=False)
        if not msg.done:
            return ReceiveResult(have + len(chunk))
        if have + len(chunk) != self.total or self._digest.hexdigest() != self.checksum:
            return ReceiveResult(0, ok=False)
        if self._head_end < 0:
            return ReceiveResult(0, ok=False)  # no membership line
        # The state straight from the spool, past the head: read whole and split, it
        # was two copies of the state in the step that took the last chunk (0.3 s of the
        # loop at 160 MB).
        snap = snapshot_of(
            bytes(self._head),
            self.spool.read_from(self._head_end + 1),
            self.index,
            self.term,
            msg.last_included_hash,
            signer=self.signer,
            sig=self.sig,
        )
        if snap is None:
            return ReceiveResult(0, ok=False)
        return ReceiveResult(self.total, snapshot=snap)

    def restream_checksum(self, snapshot: Snapshot) -> str | None:
        """The checksum of ``snapshot`` (this stream's, assembled) as this node would
        stream it on: the stream's own, when this node would send the same bytes (its
        membership line encodes back to the one received), else None (computed when
        needed). A checksum that did not match what it sends would make every follower
        refuse the stream."""
        line = head_line(snapshot.meta.membership)
        return self.checksum if line == bytes(self._head) + b"\n" else None

    def _take_head(self, chunk: bytes) -> bool:
        """Keep the membership line as it streams in; False if it runs past its bound."""
        cut = chunk.find(b"\n")
        self._head += chunk if cut < 0 else chunk[:cut]
        if cut >= 0:
            self._head_end = len(self._head)
        return len(self._head) <= _HEAD_BYTES_MAX


__all__ = [
    "MemorySpool",
    "OutgoingSnapshot",
    "ReceiveResult",
    "SnapshotReceive",
    "SnapshotSend",
    "Spool",
    "checksum_of",
    "stream_checksum",
    "decode_payload",
    "head_line",
    "snapshot_of",
    "encode_payload",
]
