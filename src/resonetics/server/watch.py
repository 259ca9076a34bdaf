"""The watch hub: serves ``watch`` streams from the node's change history.

Theory of operation
-------------------
Every node, leader or follower, applies only committed entries, and records what
each changed in its ``ChangeHistory`` (``machine/changes.py``) as it applies it. A
watch is a position in that history (``next``: the next log index the stream still
owes) and a prefix; serving it is walking the history from ``next`` and sending the
changes whose key starts with the prefix. So a stream is in log order, gap-free and
without duplicates by construction, on any node; a follower's stream may lag the
leader's by its apply lag, never skip.

Wake-ups: the history calls ``_wake`` once per new record, but only while some watch
exists (the listener is unset otherwise: no per-write work for nobody); ``_wake``
schedules one ``pump`` per loop turn. ``tick`` (the server's ticker) sends progress
notices every ``WATCH_PROGRESS_INTERVAL_S`` and retries watches blocked on a full
connection every ``WATCH_RETRY_S``.

Backpressure and bounds: nothing is queued per watch. A watch's backlog is the part of
the shared history after its position (references, never copies). Events are written
only while the connection's transport holds less than ``WATCH_CONN_BUFFER_BYTES_MAX``
unsent bytes; past it the watch waits. A waiting watch whose backlog grows past
``WATCH_QUEUE_CHANGES_MAX`` changes or ``WATCH_QUEUE_BYTES_MAX`` bytes, or whose
position the history ring dropped, is cut with ``WATCH_TOO_SLOW`` naming the last
index it was complete through. If the node replaced its state with a snapshot
(a follower far behind) the history before it is gone: watches that still needed it
end with ``COMPACTED``, and the client resumes elsewhere. Memory is therefore bounded
by the history's ring, the per-connection buffer bound, and the number of watches
(``WATCHES_PER_CONNECTION_MAX``, ``WATCHES_MAX``).

Everything runs on the event loop thread (the history is only changed there too), and
all writes go through the server's ``Outbox``, so a watch's first answer (its
``ClientResponse``) always precedes its events on the connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from resonetics import limits
from resonetics.machine.changes import ChangeHistory, Record
from resonetics.runtime.outcome import OnDone, Outcome
from resonetics.wire import codes
from resonetics.wire.client import WATCH_OPS
from resonetics.wire.envelope import encode_envelope
from resonetics.wire.watch import (
    END_KIND,
    EVENTS_KIND,
    PROGRESS_KIND,
    WatchEnd,
    WatchEvent,
    WatchProgress,
)

if TYPE_CHECKING:
    from resonetics.security.authz import Identity

_ENCODER: Final = msgspec.json.Encoder()


class WatchConnection(Protocol):
    """What the hub needs of a client connection (``ClientConnection``, or an HTTP
    stream's): its transport, and who is on it (judged again after a policy reload)."""

    transport: Any
    identity: Identity | None

    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...


class Sender(Protocol):
    """Queues bytes for a connection (the server's ``Outbox``)."""

    def add(self, writer: Any, data: bytes) -> None: ...


class _Watch:
    __slots__ = ("blocked", "conn", "id", "next", "prefix", "resets")

    def __init__(
        self, conn: WatchConnection, wid: int | str, prefix: str, next_: int, resets: int
    ) -> None:
        self.conn = conn
        self.id = wid
        self.prefix = prefix
        #: The next log index this stream owes; every change before it was sent.
        self.next = next_
        self.resets = resets
        self.blocked = False


class WatchHub:
    """All watches of one node (the module's theory of operation)."""

    def __init__(
        self,
        history: ChangeHistory | None,
        sender: Sender,
        *,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self.history = history
        self._sender = sender
        self._clock = clock
        self._schedule = schedule
        self._by_conn: dict[WatchConnection, dict[int | str, _Watch]] = {}
        self._count = 0
        #: Bytes handed to each connection since the last pump began (not yet in its
        #: transport's buffer): the connection's bound is shared by all its watches.
        self._sent_now: dict[WatchConnection, int] = {}
        self._scheduled = False
        self._next_progress = clock() + limits.WATCH_PROGRESS_INTERVAL_S
        self._next_retry = 0.0
        #: Streams ended, by code; events and progress notices sent (``status``).
        self.ended: Counter[str] = Counter()
        self.events_sent = 0
        self.progress_sent = 0

    def __len__(self) -> int:
        return self._count

    # --- requests ---------------------------------------------------------------------
    def handle(
        self, op: str, wid: Any, args: dict[str, Any], conn: WatchConnection, done: OnDone
    ) -> None:
        """Serve a validated, authorized ``watch`` or ``watch_cancel``; ``done`` answers it."""
        if op == "watch_cancel":
            done(Outcome(codes.OK, {"cancelled": self.cancel(conn, args["watch"])}))
            return
        refusal = self._refusal(wid, args, conn)
        if refusal is not None:
            done(refusal)
            return
        history = self.history
        assert history is not None
        applied = history.applied[0]
        from_index = args.get("from_index") or applied + 1
        watch = _Watch(conn, wid, args["prefix"], from_index, history.resets)
        self._by_conn.setdefault(conn, {})[wid] = watch
        self._count += 1
        history.listener = self._wake
        result = {
            "from_index": from_index,
            "oldest_index": history.oldest_index,
            "applied_index": applied,
        }
        done(Outcome(codes.OK, result))
        self._feed(watch)

    def _refusal(self, wid: Any, args: dict[str, Any], conn: WatchConnection) -> Outcome | None:
        history = self.history
        if history is None:
            return Outcome(
                codes.BAD_REQUEST, message="op: this node's machine reports no changes to watch"
            )
        if not isinstance(wid, int | str) or isinstance(wid, bool):
            return Outcome(codes.BAD_REQUEST, message="id: a watch needs an envelope id")
        mine = self._by_conn.get(conn, {})
        if wid in mine:
            return Outcome(codes.BAD_REQUEST, message=f"id: watch {wid!r} is already open here")
        if len(mine) >= limits.WATCHES_PER_CONNECTION_MAX:
            return Outcome(
                codes.BAD_REQUEST,
                message=f"watch: this connection holds {limits.WATCHES_PER_CONNECTION_MAX} "
                "watches already (the limit); cancel one first",
            )
        if self._count >= limits.WATCHES_MAX:
            return Outcome(codes.UNAVAILABLE, message="watch: this node serves its limit")
        from_index = args.get("from_index")
        oldest = history.oldest_index
        if from_index is not None and from_index < oldest:
            return Outcome(
                codes.COMPACTED,
                {"oldest_index": oldest},
                message=f"from_index: {from_index} is older than the oldest change this node "
                f"holds ({oldest}); read a snapshot and watch from its index",
            )
        return None

    def cancel(self, conn: WatchConnection, wid: Any) -> bool:
        """End ``conn``'s watch ``wid`` (True) or say there was none (False)."""
        watch = self._by_conn.get(conn, {}).get(wid)
        if watch is None:
            return False
        self._end(watch, codes.CANCELLED, "cancelled by the client")
        return True

    def recheck(self, refusal: Callable[[WatchConnection, str], Outcome | None]) -> int:
        """End every watch ``refusal`` now refuses (after a policy reload: a prefix no
        longer readable, a token replaced or removed), with the refusal's code and message;
        how many were ended. A watch is authorized when it opens, so without this a
        revoked client would go on reading every change under its prefix."""
        ended = 0
        for watches in list(self._by_conn.values()):
            for watch in list(watches.values()):
                outcome = refusal(watch.conn, watch.prefix)
                if outcome is not None:
                    self._end(watch, outcome.code, outcome.message or outcome.code)
                    ended += 1
        return ended

    def drop(self, conn: WatchConnection) -> None:
        """The connection closed: forget its watches (nothing is sent)."""
        watches = self._by_conn.pop(conn, None)
        self._sent_now.pop(conn, None)
        if watches:
            self._count -= len(watches)
            self.ended["connection closed"] += len(watches)
            self._quiet_if_idle()

    # --- delivery ---------------------------------------------------------------------
    def _wake(self) -> None:
        if not self._scheduled and self._schedule is not None:
            self._scheduled = True
            self._schedule(self.pump)

    def pump(self) -> None:
        """Send every watch what it is owed, as far as its connection takes it."""
        self._scheduled = False
        self._sent_now.clear()
        for watches in list(self._by_conn.values()):
            for watch in list(watches.values()):
                self._feed(watch)

    def tick(self) -> None:
        """Retry blocked watches; send progress notices when they are due."""
        if not self._count:
            return
        now = self._clock()
        if now >= self._next_retry:
            self._next_retry = now + limits.WATCH_RETRY_S
            self.pump()
        if now >= self._next_progress:
            self._next_progress = now + limits.WATCH_PROGRESS_INTERVAL_S
            self.progress()

    def progress(self) -> None:
        """Tell every caught-up watch the node applied through its applied index."""
        history = self.history
        if history is None:
            return
        index, term, hash_ = history.applied
        payload = WatchProgress(index=index, term=term, hash=hash_)
        for watches in list(self._by_conn.values()):
            for watch in list(watches.values()):
                if not watch.blocked and watch.next > index:
                    self._send(watch, encode_envelope(PROGRESS_KIND, payload, _now_ms(), watch.id))
                    self.progress_sent += 1

    def _feed(self, watch: _Watch) -> None:
        history = self.history
        assert history is not None
        conn = watch.conn
        if conn.is_closing():
            return
        if watch.next < history.oldest_index:
            self._cut_behind(watch, history)
            return
        room = limits.WATCH_CONN_BUFFER_BYTES_MAX - _buffered(conn) - self._sent_now.get(conn, 0)
        if room <= 0:
            self._wait(watch, history)
            return
        watch.blocked = False
        parts: list[msgspec.Raw] = []
        size = 0
        applied = history.applied[0]
        prefix = watch.prefix
        for record in history.records_from(watch.next):
            for (key, _, _), encoded in zip(record.changes, _encoded(record), strict=True):
                if key.startswith(prefix):
                    parts.append(encoded)
                    size += len(encoded)
            watch.next = record.index + 1
            if size >= limits.WATCH_MESSAGE_BYTES:
                self._send_events(watch, parts)
                room -= size
                parts, size = [], 0
                if room <= 0:
                    watch.blocked = True
                    return
        if parts:
            self._send_events(watch, parts)
        watch.next = max(watch.next, applied + 1)

    def _wait(self, watch: _Watch, history: ChangeHistory) -> None:
        watch.blocked = True
        changes, size = history.lag(watch.next)
        if changes > limits.WATCH_QUEUE_CHANGES_MAX or size > limits.WATCH_QUEUE_BYTES_MAX:
            self._end(
                watch,
                codes.WATCH_TOO_SLOW,
                f"the watcher is {changes} changes ({size} bytes) behind and not reading; "
                "resume from last_index + 1",
            )

    def _cut_behind(self, watch: _Watch, history: ChangeHistory) -> None:
        oldest = history.oldest_index
        if watch.resets != history.resets:
            why = "this node replaced its state with a snapshot; resume on another node"
            self._end(watch, codes.COMPACTED, why, oldest_index=oldest)
        else:
            why = f"the history this watch still needed was dropped (oldest now {oldest})"
            self._end(watch, codes.WATCH_TOO_SLOW, why, oldest_index=oldest)

    def _send_events(self, watch: _Watch, parts: list[msgspec.Raw]) -> None:
        self._send(watch, encode_envelope(EVENTS_KIND, {"events": parts}, _now_ms(), watch.id))
        self.events_sent += len(parts)

    def _send(self, watch: _Watch, data: bytes) -> None:
        conn = watch.conn
        self._sent_now[conn] = self._sent_now.get(conn, 0) + len(data)
        self._sender.add(conn, data)

    def _end(self, watch: _Watch, code: str, message: str, oldest_index: int | None = None) -> None:
        end = WatchEnd(code=code, message=message, last_index=watch.next - 1)
        if oldest_index is not None:
            end = WatchEnd(
                code=code, message=message, last_index=watch.next - 1, oldest_index=oldest_index
            )
        self._send(watch, encode_envelope(END_KIND, end, _now_ms(), watch.id))
        watches = self._by_conn.get(watch.conn)
        if watches is not None and watches.pop(watch.id, None) is not None:
            self._count -= 1
            self.ended[code] += 1
            if not watches:
                del self._by_conn[watch.conn]
        self._quiet_if_idle()

    def _quiet_if_idle(self) -> None:
        if not self._count and self.history is not None:
            self.history.listener = None  # no watch: no per-write wake-ups

    def status(self) -> dict[str, Any]:
        history = self.history
        return {
            "watches": self._count,
            "events_sent": self.events_sent,
            "ended": dict(self.ended),
            "history_changes": 0 if history is None else history.changes_held,
            "history_bytes": 0 if history is None else history.bytes_held,
            "oldest_index": None if history is None else history.oldest_index,
        }


def _encoded(record: Record) -> list[msgspec.Raw]:
    """The record's changes as event JSON, encoded once however many watchers read them."""
    cached: list[msgspec.Raw] | None = record.encoded
    if cached is None or len(cached) != len(record.changes):
        cached = record.encoded = [
            msgspec.Raw(
                _ENCODER.encode(
                    WatchEvent(
                        index=record.index,
                        term=record.term,
                        hash=record.hash,
                        key=key,
                        kind=kind,
                        value=value,
                    )
                )
            )
            for key, kind, value in record.changes
        ]
    return cached


def _buffered(conn: WatchConnection) -> int:
    transport = conn.transport
    if transport is None:
        return 0
    size: int = transport.get_write_buffer_size()
    return size


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["WATCH_OPS", "WatchHub"]
