"""Exactly-once client sessions with honest bounds (Raft dissertation §6.3).

Theory of operation
-------------------
A client may retry a request whose outcome it never heard (a TIMEOUT, a lost
connection, a new leader). The replicated state therefore remembers, per
client, the result of recent requests: a retry that reaches the log again is
answered with the *original* result and not re-applied. Memory is finite, so
results must be dropped some day; what matters is what happens to a retry
that arrives after its result was dropped. There are two kinds of session.

**Sequenced sessions** (the dissertation's design; the client library uses
them). A client first commits ``session_open``, which creates a session with
an id unique for the life of the cluster (a counter in the replicated state)
and replaces any earlier session of that ``client_id``. Every write then
carries ``session``, an increasing ``seq`` and ``ack_below``: "I no longer
await any of my requests below this seq". Per session the table keeps:

* ``acked_below``, a high-water mark: every seq below it is settled. It rises
  with the client's acknowledgements and when a result is evicted for the
  per-client bounds (the smallest seq goes first; the mark passes it);
* the results of seqs at or above the mark, each with a digest of its request.

A request is **new** only if its session is the client's current session and
``seq >= acked_below`` and its seq has no result. A seq below the mark, a
session that is not the current one (expired, evicted, or replaced by a newer
``session_open``) and an unknown client are refused with ``SESSION_EXPIRED``
and applied nowhere. Because session ids are never reused and the mark never
falls, the guarantee holds with no exception: **a sequenced request is applied
at most once, ever**. The price is liveness: a client whose session was
evicted gets ``SESSION_EXPIRED`` and must open a new session. ``session_open``
itself changes nothing but the table, so applying a retried open twice only
makes a fresh session the client will use (or refuse from).

**Legacy requests** (no ``session`` field: older clients) are keyed by
``request_id`` in a session of id 0, as before: a retry whose result was
evicted (more than ``results_per_client_max`` newer requests, LRU eviction of
the client, expiry) is applied again. They keep being served for backward
compatibility; the guarantee above is for sequenced sessions only. A legacy
request for a client that holds a sequenced session is ``SESSION_EXPIRED``.

In both kinds a dedup hit compares the stored digest (BLAKE2b of the canonical
``[request_id, op, args]``) with the retry's: a request id reused with another
payload is refused (``BAD_REQUEST``), never answered with the other result.

Bounds (all deterministic; see ``limits.py``): results per client, encoded
result bytes per client, clients, encoded bytes of the whole table (least
recently used clients go first), and expiry after ``expiry_ms`` of *log* time
idle. Log time is the largest ``ts`` the leaders stamped on client entries so
far (a maximum, so a new leader whose clock is behind cannot move it
backwards); no replica reads its own clock. Sessions are touched in log-time
order, so ``last_ms`` is non-decreasing in LRU order and expiry only looks at
the front.

Byte accounting counts each result as its compact JSON encoding plus
``SESSION_RESULT_OVERHEAD_BYTES`` and each session as
``SESSION_OVERHEAD_BYTES`` (roughly its snapshot size; Python's in-memory
objects take a small constant factor more).
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, BinaryIO, Final, cast

import msgspec

from resonetics import limits
from resonetics.decode_errors import snapshot_slice
from resonetics.errors import BadRequest, SessionExpired, invariant

#: Session id of legacy (unsequenced) sessions: requests keyed by request_id.
LEGACY: Final = 0
#: Clients encoded between two yields of ``SessionTable.snapshot_steps``.
SNAPSHOT_SLICE_CLIENTS: Final = 2_000
_ENCODER: Final = msgspec.json.Encoder(order="sorted")

Key = str | int
#: A result encoded as the table keeps it (``encode_result``). Named, because inside
#: ``SessionTable`` the name ``bytes`` is its byte count.
EncodedResult = bytes


class _Result(msgspec.Struct, frozen=True, gc=False):
    """One remembered result, kept as its canonical JSON.

    Why encoded: one is made per applied command and lives until evicted, long enough
    for the cyclic collector to promote it to its oldest generation. A result dict
    holding a receipt dict is tracked, so each write added one object there and brought
    on full collections, each a walk of the whole heap with the loop stopped: 19-27 per
    node of up to 115-177 ms on a store growing to a million keys, one once results were
    kept encoded (``bench/large_store.py``, docs/benchmarks.md). Bytes are never tracked,
    take about half the memory of the dicts, are the very encoding the byte bounds
    count, and go into a snapshot as they are; the rare dedup hit decodes them.
    """

    digest: str
    #: ``_ENCODER.encode(result)``.
    encoded: bytes
    bytes: int

    @property
    def result(self) -> Any:
        """The result as a JSON value (what a snapshot restore has always given)."""
        return msgspec.json.decode(self.encoded)


@dataclass(slots=True)
class _Session:
    last_ms: int
    #: LEGACY, or the id ``open`` gave this session.
    session: int = LEGACY
    #: Sequenced sessions: every seq below this is settled (acknowledged or evicted).
    acked_below: int = 1
    #: key (request_id for legacy, seq for sequenced) -> result, oldest first.
    results: OrderedDict[Key, _Result] = field(default_factory=OrderedDict)
    #: Accounted bytes of ``results``.
    bytes: int = 0
    #: Sequenced sessions: a min-heap of exactly the seqs in ``results``, so that an
    #: acknowledgement or an eviction finds the seqs below a mark without scanning every
    #: result held (a pipelining client keeps hundreds; a scan per write was a tenth of
    #: each replica's CPU at 256 in flight).
    seqs: list[int] = field(default_factory=list)
    #: Whether a snapshot being written may still hold ``results`` (``snapshot_steps``
    #: takes the dict itself, not a copy): the next change copies it first.
    shared: bool = False


def _unshare(session: _Session) -> None:
    """Copy ``session.results`` before a change: a snapshot may hold the dict (copy on
    write). Callers test ``session.shared`` first: the common case costs one test."""
    session.results = session.results.copy()
    session.shared = False


class SessionData(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """One session in a snapshot: ``[client_id, last_ms, [[key, digest, result], ...],
    session, acked_below]``. Results of format-1 snapshots are ``[request_id, result]``
    (no digest: a dedup hit on them is not compared)."""

    client_id: str
    last_ms: int
    results: list[list[Any]]
    session: int = LEGACY
    acked_below: int = 1


class _ResultRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One result as a snapshot writes it, ``[key, digest, result]``: encoded exactly as
    that list, but never tracked by the collector. A snapshot of a full table makes a
    million of them; as lists they brought on full collections of the whole table
    (a quarter of a second each at its byte bound) between its slices."""

    key: Key
    digest: str
    result: msgspec.Raw


class _FixedSession(msgspec.Struct, frozen=True, gc=False):
    """A session as ``snapshot_steps`` fixed it at its first step (untracked, as above:
    one per client lives through the whole snapshot)."""

    client_id: str
    last_ms: int
    results: OrderedDict[Key, _Result]
    session: int
    acked_below: int


class _SessionRead(SessionData, frozen=True, kw_only=True, array_like=True, gc=False):
    """One session of a format-2 snapshot as ``restore_steps`` reads it: each result as
    the bytes the writing table kept, never decoded."""

    results: list[_ResultRow]  # type: ignore[assignment]


class SessionTableRead(msgspec.Struct, frozen=True, kw_only=True):
    """The table of a snapshot as ``restore_steps`` reads it: each session left as its
    JSON, to be read a slice of clients per step (``SessionTableData``'s fields)."""

    now_ms: int
    clients: list[msgspec.Raw]
    next_session: int = 1


_SESSIONS_READER: Final = msgspec.json.Decoder(list[_SessionRead])
_SESSIONS_DECODER: Final = msgspec.json.Decoder(list[SessionData])


class SessionTableData(msgspec.Struct, frozen=True, kw_only=True):
    """The table in a snapshot; ``clients`` in LRU order (least recently used first)."""

    now_ms: int
    clients: list[SessionData]
    #: The id the next ``session_open`` gets.
    next_session: int = 1


class Verdict(msgspec.Struct, frozen=True):
    """What to answer instead of applying: a dedup hit (``OK``) or a refusal."""

    code: str
    result: Any = None
    message: str = ""


#: An empty BLAKE2b-128 to copy: a copy costs less than a constructor's keyword
#: arguments and parameter block, once per applied command on every node.
_DIGEST_START: Final = hashlib.blake2b(digest_size=16)


def request_digest(request_id: str, op: str, args: Any) -> str:
    """What a retry must repeat exactly: BLAKE2b-128 of canonical ``[request_id, op, args]``."""
    digest = _DIGEST_START.copy()
    digest.update(_ENCODER.encode([request_id, op, args]))
    return digest.hexdigest()


#: A request's digest, or the ``(request_id, op, args)`` to take it of should a stored
#: result need comparing: a leader's check before proposing then hashes nothing unless
#: the request was seen before (the apply takes the digest anyway, to store it).
Digest = str | tuple[str, str, Any]


def _digest_of(digest: Digest) -> str:
    return digest if isinstance(digest, str) else request_digest(*digest)


def encode_result(result: Any) -> bytes:
    """``result`` encoded as the table keeps it (canonical JSON)."""
    return _ENCODER.encode(result)


def _stored(key: Key, digest: str, result: Any) -> _Result:
    """``result`` as the table keeps it under ``key``, with its accounted size."""
    return _kept(key, digest, _ENCODER.encode(result))


def _kept(key: Key, digest: str, encoded: bytes) -> _Result:
    """A result already encoded (``_ENCODER.encode``) as the table keeps it."""
    size = len(encoded) + len(str(key)) + limits.SESSION_RESULT_OVERHEAD_BYTES
    return _Result(digest, encoded, size)


class SessionTable:
    """client_id -> session (results, ack mark), bounded, expired by log time."""

    def __init__(
        self,
        *,
        results_per_client_max: int = limits.SESSION_RESULTS_PER_CLIENT_MAX,
        clients_max: int = limits.SESSION_CLIENTS_MAX,
        expiry_ms: int = limits.SESSION_EXPIRY_MS,
        bytes_per_client_max: int = limits.SESSION_BYTES_PER_CLIENT_MAX,
        table_bytes_max: int = limits.SESSION_TABLE_BYTES_MAX,
    ) -> None:
        self.results_per_client_max = results_per_client_max
        self.clients_max = clients_max
        self.expiry_ms = expiry_ms
        self.bytes_per_client_max = bytes_per_client_max
        self.table_bytes_max = table_bytes_max
        # Invariant: last_ms is non-decreasing along this order, and <= self._now_ms.
        self._clients: OrderedDict[str, _Session] = OrderedDict()
        self._now_ms = 0
        #: No session can have expired while log time is at most this: the LRU front's
        #: ``last_ms + expiry_ms`` when last looked at. A lower bound ever after, since
        #: a later front was used no earlier, so ``advance`` skips the front for it.
        self._quiet_until = 0
        self._next_session = 1
        #: Accounted bytes of every session (results and per-session overhead).
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def now_ms(self) -> int:
        """Log time: the largest entry timestamp applied so far."""
        return self._now_ms

    @property
    def bytes(self) -> int:
        """Accounted size of the table, bytes (bounded by ``table_bytes_max``)."""
        return self._bytes

    def clients(self) -> list[str]:
        """Client ids, least recently used first."""
        return list(self._clients)

    # --- pure reads ------------------------------------------------------------------------
    def lookup(self, client_id: str, request_id: str) -> tuple[bool, Any]:
        """(found, result) of a legacy request — a pure read: it never changes LRU order
        (leaders call it before proposing, outside the log, where a change would diverge
        replicas)."""
        session = self._clients.get(client_id)
        if session is None or session.session != LEGACY:
            return False, None
        stored = session.results.get(request_id)
        return (False, None) if stored is None else (True, stored.result)

    def holds(self, client_id: str, key: Key) -> bool:
        """Whether a result is remembered for ``client_id`` under ``key`` (a legacy
        request id or a seq). Pure read; ``check`` answers nothing else but for such a
        result, or a refusal that a leader does not give before proposing."""
        session = self._clients.get(client_id)
        return session is not None and key in session.results

    def check(
        self, client_id: str, request_id: str, digest: Digest, seq: Mapping[str, int] | None
    ) -> Verdict | None:
        """None if the request is new (apply it), else what to answer. Pure read.

        ``seq`` is ``{"session", "seq", ...}`` for a sequenced request, None for legacy.
        Called before proposing (where only dedup hits and mismatches are trusted: a
        lagging node may not know a session yet) and at apply (authoritative).
        """
        session = self._clients.get(client_id)
        if seq is None:
            if session is not None and session.session != LEGACY:
                return _expired(f"client {client_id!r} has a sequenced session; send its fields")
            return self._dedup(session, request_id, digest)
        if session is None or session.session != seq["session"]:
            return _expired(
                f"session {seq['session']} of client {client_id!r} is not open "
                "(expired, evicted or replaced): open a new session"
            )
        verdict = self._dedup(session, seq["seq"], digest)
        if verdict is None and seq["seq"] < session.acked_below:
            return _expired(
                f"seq {seq['seq']} is below the session's window (acked_below "
                f"{session.acked_below}): its result was discarded"
            )
        return verdict

    @staticmethod
    def _dedup(session: _Session | None, key: Key, digest: Digest) -> Verdict | None:
        stored = None if session is None else session.results.get(key)
        if stored is None:
            return None
        if stored.digest and stored.digest != _digest_of(digest):
            reason = f"{key!r} was already used for another request (op or args differ)"
            return Verdict(BadRequest.code, {"field": "request_id", "reason": reason}, reason)
        return Verdict("OK", stored.result)

    # --- changes (during apply only) -------------------------------------------------------
    def advance(self, ts_ms: int) -> list[str]:
        """Move log time to ``max(now, ts_ms)`` and drop expired sessions; returns them."""
        self._now_ms = max(self._now_ms, ts_ms)
        if self._now_ms <= self._quiet_until:  # applied once per command: no lookup
            return []
        expired: list[str] = []
        while self._clients:
            client_id, session = next(iter(self._clients.items()))
            if self._now_ms - session.last_ms <= self.expiry_ms:
                self._quiet_until = session.last_ms + self.expiry_ms
                break
            self._drop(client_id)
            expired.append(client_id)
        return expired

    def touch(self, client_id: str) -> None:
        """Mark the client as used now."""
        session = self._clients.get(client_id)
        if session is not None:
            session.last_ms = self._now_ms
            self._clients.move_to_end(client_id)

    def open(self, client_id: str) -> int:
        """Start a new sequenced session for ``client_id`` (replacing any); its id."""
        sid = self._next_session
        self._next_session += 1
        if client_id in self._clients:
            self._drop(client_id)
        self._clients[client_id] = _Session(self._now_ms, session=sid)
        self._bytes += limits.SESSION_OVERHEAD_BYTES
        self._evict_clients()
        return sid

    def acknowledge(self, client_id: str, session_id: int, ack_below: int) -> None:
        """The client no longer awaits seqs below ``ack_below``: discard their results."""
        session = self._clients.get(client_id)
        if session is None or session.session != session_id or ack_below <= session.acked_below:
            return
        session.acked_below = ack_below
        seqs = session.seqs
        while seqs and seqs[0] < ack_below:
            self._forget(session, heapq.heappop(seqs))

    def record(
        self,
        client_id: str,
        request_id: str,
        result: Any,
        *,
        digest: str = "",
        seq: int | None = None,
        encoded: EncodedResult | None = None,
    ) -> None:
        """Remember ``result`` of a request applied now (``seq`` for a sequenced session),
        evicting beyond the bounds. ``digest`` "" is never compared (tests, format 1).
        ``encoded``: ``result`` already encoded as the table keeps it (the writes of one
        batch entry share one result; ``result`` is then not read), else it is encoded
        here."""
        session = self._clients.get(client_id)
        if session is None:
            invariant(seq is None, "sequenced request of %r recorded without a session", client_id)
            session = self._clients[client_id] = _Session(self._now_ms)
            self._bytes += limits.SESSION_OVERHEAD_BYTES
        key: Key = request_id if seq is None else seq
        if session.shared:
            _unshare(session)
        results = session.results
        if key in results:
            invariant(False, "request %r applied twice", key)
        if encoded is None:
            encoded = _ENCODER.encode(result)
        stored = results[key] = _kept(key, digest, encoded)
        size = stored.bytes
        if seq is not None:
            heapq.heappush(session.seqs, seq)
        session.bytes += size
        self._bytes += size
        session.last_ms = self._now_ms  # touch(), inlined: once per command
        self._clients.move_to_end(client_id)
        while results and (
            len(results) > self.results_per_client_max or session.bytes > self.bytes_per_client_max
        ):
            self._evict_one(session)
        if len(self._clients) > self.clients_max or self._bytes > self.table_bytes_max:
            self._evict_clients()

    def _evict_one(self, session: _Session) -> None:
        if session.session == LEGACY:
            if session.shared:
                _unshare(session)
            _, stored = session.results.popitem(last=False)  # the oldest request goes
            session.bytes -= stored.bytes
            self._bytes -= stored.bytes
            return
        # The smallest seq goes, and the mark passes it: never applied again.
        smallest = heapq.heappop(session.seqs)
        self._forget(session, smallest)
        session.acked_below = max(session.acked_below, smallest + 1)

    def _forget(self, session: _Session, key: Key) -> None:
        if session.shared:
            _unshare(session)
        stored = session.results.pop(key)
        session.bytes -= stored.bytes
        self._bytes -= stored.bytes

    def _evict_clients(self) -> None:
        while self._clients and (
            len(self._clients) > self.clients_max or self._bytes > self.table_bytes_max
        ):
            self._drop(next(iter(self._clients)))

    def _drop(self, client_id: str) -> None:
        session = self._clients.pop(client_id)
        self._bytes -= session.bytes + limits.SESSION_OVERHEAD_BYTES

    # --- snapshot ------------------------------------------------------------------------
    def to_data(self) -> SessionTableData:
        return SessionTableData(
            now_ms=self._now_ms,
            next_session=self._next_session,
            clients=[
                _session_data(cid, s.last_ms, s.results, s.session, s.acked_below)
                for cid, s in self._clients.items()
            ],
        )

    def snapshot_steps(
        self,
        out: BinaryIO,
        encoder: msgspec.json.Encoder,
        slice_clients: int = SNAPSHOT_SLICE_CLIENTS,
    ) -> Generator[None, None, None]:
        """Write ``encoder.encode(self.to_data())`` into ``out``, byte for byte, a slice
        of clients per step.

        A generator. Its first step (up to the first yield) fixes the table: each
        session's fields, and its results dict itself, marked ``shared`` so that the
        table copies a dict before it next changes it (results themselves are never
        changed). What it writes is the table at that instant whatever is applied after,
        and the first step touches each session once, not each result: a copy of every
        results dict took 0.4 s at the table's byte bound. It writes nothing before its
        second step, so the caller may put other bytes into ``out`` first.

        Why in slices: ``to_data`` builds a list per remembered result in one call; at
        the table's byte bound (about 1.25 M results over 100,000 clients) that and its
        encoding stopped the loop for 3-5 s at the start of every snapshot, long enough
        for the cluster to lose its leader.
        """
        fixed = []
        for cid, s in self._clients.items():
            s.shared = True
            fixed.append(_FixedSession(cid, s.last_ms, s.results, s.session, s.acked_below))
        empty = encoder.encode(
            SessionTableData(now_ms=self._now_ms, clients=[], next_session=self._next_session)
        )
        # Fields are sorted (clients, next_session, now_ms) and none nests a string that
        # could hold the marker: the first ``"clients":[`` is the field.
        marker = b'"clients":['
        cut = empty.index(marker) + len(marker)
        yield
        out.write(empty[:cut])
        for start in range(0, len(fixed), slice_clients):
            if start:
                # A yield between slices only: a table of one slice takes no step of its
                # own, so a snapshot of a small table takes the steps it always did.
                yield
                out.write(b",")
            chunk = encoder.encode([_written(f) for f in fixed[start : start + slice_clients]])
            out.write(memoryview(chunk)[1:-1])  # without the list's brackets
        out.write(empty[cut:])

    def load_data(self, data: SessionTableData) -> None:
        """Replace the table with ``data`` (as produced by ``to_data``, or format 1)."""
        clients = OrderedDict((s.client_id, _loaded(s)) for s in data.clients)
        self._adopt(data.now_ms, data.next_session, clients)

    def restore_steps(
        self,
        data: SessionTableRead,
        *,
        results_as_written: bool = True,
        slice_clients: int | None = None,
    ) -> Generator[None, None, Callable[[], None]]:
        """Read ``data`` a slice of clients per step; the generator's value replaces the
        table with it, at once. Until then the table is untouched, so the node goes on
        applying while a follower's snapshot is read (``runtime/snapshot_reading.py``).

        ``results_as_written``: each result is taken as the bytes the snapshot holds,
        never decoded. Why: decoding each into a dict and encoding it again was nearly
        all of a restore, one step of 2-7 s at the table's byte bound (1.25 M results).
        The bytes are the ones the writing replica kept and counted, so the byte
        accounting, and with it eviction, is the same on every replica. False for
        format 1, whose results are ``[request_id, result]``: each is encoded here.
        """
        reader: msgspec.json.Decoder[list[SessionData]] = (
            _SESSIONS_READER if results_as_written else _SESSIONS_DECODER  # type: ignore[assignment]
        )
        step = slice_clients or SNAPSHOT_SLICE_CLIENTS
        clients: OrderedDict[str, _Session] = OrderedDict()
        for start in range(0, len(data.clients), step):
            yield
            part = data.clients[start : start + step]
            sessions = snapshot_slice(reader, part, what="session table: clients", first=start)
            for s in sessions:
                clients[s.client_id] = _loaded(s)
        return partial(self._adopt, data.now_ms, data.next_session, clients)

    def _adopt(self, now_ms: int, next_session: int, clients: OrderedDict[str, _Session]) -> None:
        self._now_ms = now_ms
        self._quiet_until = 0
        self._next_session = next_session
        self._clients = clients
        self._bytes = sum(s.bytes for s in clients.values()) + len(clients) * (
            limits.SESSION_OVERHEAD_BYTES
        )


def _loaded(s: SessionData | _SessionRead) -> _Session:
    """One session of a snapshot as the table keeps it."""
    session = _Session(s.last_ms, session=s.session, acked_below=s.acked_below)
    results = session.results
    total = 0
    for item in s.results:
        if isinstance(item, _ResultRow):
            stored = results[item.key] = _kept(item.key, item.digest, bytes(item.result))
        else:
            key, digest, result = (item[0], "", item[1]) if len(item) == 2 else item
            stored = results[key] = _stored(key, digest, result)
        total += stored.bytes
    session.bytes = total
    session.seqs = [k for k in results if isinstance(k, int)]
    heapq.heapify(session.seqs)
    return session


def _session_data(
    client_id: str, last_ms: int, results: Mapping[Key, _Result], session: int, acked_below: int
) -> SessionData:
    """One session as a snapshot holds it (each result as the JSON it was kept as)."""
    return SessionData(
        client_id=client_id,
        last_ms=last_ms,
        results=[[k, r.digest, msgspec.Raw(r.encoded)] for k, r in results.items()],
        session=session,
        acked_below=acked_below,
    )


def _written(fixed: _FixedSession) -> SessionData:
    """``fixed`` for ``snapshot_steps`` to encode: the bytes of ``_session_data``'s, with
    untracked rows in place of its lists (never decoded or read: only encoded)."""
    # A tuple of untracked rows: the collector untracks it at its first look, a list it
    # would have to walk until it is freed.
    rows = tuple(
        [_ResultRow(k, r.digest, msgspec.Raw(r.encoded)) for k, r in fixed.results.items()]
    )
    return SessionData(
        client_id=fixed.client_id,
        last_ms=fixed.last_ms,
        results=cast(list[list[Any]], rows),
        session=fixed.session,
        acked_below=fixed.acked_below,
    )


def _expired(message: str) -> Verdict:
    return Verdict(SessionExpired.code, None, message)


__all__ = [
    "LEGACY",
    "SessionData",
    "SessionTable",
    "SessionTableData",
    "SessionTableRead",
    "Digest",
    "Verdict",
    "encode_result",
    "request_digest",
]
