"""``GET /v1/watch``: a watch stream over HTTP (newline-delimited JSON, or SSE).

Theory of operation
-------------------
The stream is served by the node's one ``WatchHub`` (``server/watch.py``), exactly
as a ``watch`` on the client port: the request becomes the same ``ClientRequest``
(validated by ``wire/client.py``, judged by the ``Gatekeeper``: read on the whole
prefix, charged to the identity's request budget), and the hub walks the same change
history. What is HTTP's own is the connection the hub writes to: a ``_StreamConn``
per request that

- takes the hub's envelope lines (through the server's ``Outbox``, like any client
  connection) and reframes them as NDJSON lines (``{"type": "event", ...}``,
  ``progress``, ``end``) or SSE messages;
- reports, as its transport's write buffer, the reframed bytes the handler has not
  yet written **plus** the socket's own unsent bytes. The hub feeds a connection only
  while that is under ``WATCH_CONN_BUFFER_BYTES_MAX``; a client that does not read
  stops the handler in aiohttp's drain, the pending bytes reach the bound, the hub
  stops feeding, and the watcher is cut ``WATCH_TOO_SLOW`` once its backlog passes
  the hub's bound. Memory per stream: the bound plus one message.

Before the first byte, a refusal is an HTTP status (``COMPACTED`` is ``410 Gone``
with ``oldest_index``); once streaming, the end is a last line with the reason. A
client that goes away: the handler notices within ``HTTP_WATCH_CHECK_S`` (or at
the next write, which fails), drops the watch from the hub, and returns. A write
that waits ``HTTP_WATCH_WRITE_STALL_S`` for a client that reads nothing closes the
connection. On shutdown every stream ends with an ``UNAVAILABLE`` line.

Bounds beside the hub's (``WATCHES_MAX`` per node): ``HTTP_WATCHES_MAX`` streams on
the HTTP port, ``HTTP_WATCHES_PER_ADDRESS_MAX`` from one source address (one HTTP
connection carries one stream, so the client port's per-connection bound becomes a
per-address one); beyond them ``429 TOO_MANY_WATCHES`` (503 for the node's bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter, deque
from typing import Any, Final

import msgspec
from aiohttp import web

from resonetics import limits
from resonetics.runtime.outcome import Outcome
from resonetics.security.authz import Identity
from resonetics.server.http_api import IDENTITY, HttpApi, HttpError
from resonetics.server.watch import WatchHub
from resonetics.wire import codes
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.watch import END_KIND, EVENTS_KIND, PROGRESS_KIND, WatchEnd, WatchProgress

#: More HTTP watch streams than the HTTP port's bounds allow (429).
TOO_MANY_WATCHES: Final = "TOO_MANY_WATCHES"
NDJSON: Final = "application/x-ndjson"
SSE: Final = "text/event-stream"
_ENCODER: Final = msgspec.json.Encoder()


class _Events(msgspec.Struct, frozen=True):
    events: list[msgspec.Raw]


_EVENTS: Final = msgspec.json.Decoder(_Events)
_PROGRESS: Final = msgspec.json.Decoder(WatchProgress)
_END: Final = msgspec.json.Decoder(WatchEnd)


class _Index(msgspec.Struct):
    index: int


_INDEX: Final = msgspec.json.Decoder(_Index)


class _StreamConn:
    """The hub's connection for one HTTP stream (the module's theory of operation)."""

    def __init__(self, socket_transport: Any, sse: bool) -> None:
        #: What the hub asks for its buffer size: this object.
        self.transport = self
        self._socket = socket_transport
        self._sse = sse
        self._chunks: deque[bytes] = deque()
        self._pending = 0
        self.ready = asyncio.Event()
        #: The hub ended the stream (its end line is queued).
        self.ended: WatchEnd | None = None
        #: The handler is done: nothing more is taken.
        self.closed = False
        #: The node is stopping: a CANCELLED end from the hub is reported UNAVAILABLE.
        self.stopping = False
        #: The hub's id of this stream's one watch.
        self.wid = 0
        #: Who opened the stream (judged again after a policy reload: ``WatchHub.recheck``).
        self.identity: Identity | None = None

    # --- what the hub needs -------------------------------------------------------
    def get_write_buffer_size(self) -> int:
        sock = self._socket
        held = sock.get_write_buffer_size() if sock is not None and not sock.is_closing() else 0
        return self._pending + int(held)

    def is_closing(self) -> bool:
        sock = self._socket
        return self.closed or sock is None or sock.is_closing()

    def write(self, data: bytes) -> None:
        """One or more envelope lines from the hub (via the outbox), reframed."""
        if self.closed:
            return
        for line in data.split(b"\n"):
            if line:
                self._take(line)
        self.ready.set()

    # --- what the handler needs ----------------------------------------------------
    def start(self, result: dict[str, Any]) -> None:
        self._add("start", _ENCODER.encode({"type": "start", **result}))

    def drain(self) -> bytes:
        """Every reframed byte not yet handed to the socket."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._pending = 0
        return data

    # --- reframing -------------------------------------------------------------------
    def _take(self, line: bytes) -> None:
        env = decode_envelope(line)
        if env.kind == EVENTS_KIND:
            events = _EVENTS.decode(env.payload).events
            indexes = [_INDEX.decode(raw).index for raw in events] if self._sse else []
            for n, raw in enumerate(events):
                body = b'{"type":"event",' + bytes(raw)[1:]
                # SSE's id means "complete through": only on an entry's last change (a
                # message holds whole entries, so the next event, if any, says).
                index = indexes[n] if self._sse else None
                whole = index is not None and (n + 1 == len(events) or indexes[n + 1] != index)
                self._add("event", body, index if whole else None)
        elif env.kind == PROGRESS_KIND:
            progress = _PROGRESS.decode(env.payload)
            body = _ENCODER.encode({"type": "progress", **msgspec.structs.asdict(progress)})
            self._add("progress", body, progress.index)
        elif env.kind == END_KIND:
            end = _END.decode(env.payload)
            if self.stopping and end.code == codes.CANCELLED:
                end = msgspec.structs.replace(
                    end, code=codes.UNAVAILABLE, message="the node is stopping; resume elsewhere"
                )
            self.ended = end
            fields = {k: v for k, v in msgspec.structs.asdict(end).items() if v is not None}
            self._add("end", _ENCODER.encode({"type": "end", **fields}))

    def _add(self, kind: str, body: bytes, index: int | None = None) -> None:
        if self._sse:
            head = f"event: {kind}\n" + (f"id: {index}\n" if index is not None else "")
            chunk = head.encode() + b"data: " + body + b"\n\n"
        else:
            chunk = body + b"\n"
        self._chunks.append(chunk)
        self._pending += len(chunk)


class WatchRoutes:
    """``GET /v1/watch`` for one node's ``HttpApi`` over its ``WatchHub``."""

    def __init__(self, api: HttpApi, hub: WatchHub) -> None:
        self.api = api
        self.hub = hub
        self._open: set[_StreamConn] = set()
        self._by_address: Counter[str] = Counter()
        self._ids = itertools.count(1)
        #: Streams closed because the client read nothing for a stall bound.
        self.stalled = 0

    def install(self) -> None:
        self.api.add_route("GET", "/v1/watch", self.watch)
        self.api.app.on_shutdown.append(self._on_shutdown)

    def __len__(self) -> int:
        return len(self._open)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        args = _watch_args(request)
        payload = {"client_id": "http", "request_id": "watch", "op": "watch", "args": args}
        req, _ = self.api.validate(payload)
        identity: Identity | None = request[IDENTITY]
        self.api.check_budget(request, identity)
        denied = self.api.host.gate.check(identity, req)
        if denied is not None:
            raise HttpError(denied.code, denied.message)
        address = request.remote or "?"
        self._check_room(address)
        sse = SSE in request.headers.get("Accept", "")
        conn = _StreamConn(request.transport, sse)
        conn.wid = next(self._ids)
        conn.identity = identity
        answers: list[Outcome] = []
        self.hub.handle("watch", conn.wid, req.args, conn, answers.append)
        answer = answers[0]
        if not answer.ok:
            conn.closed = True
            raise HttpError(answer.code, answer.message or answer.code, **_dict(answer.result))
        # Before any loop turn: the hub's first events reach ``conn`` only after it.
        conn.start(answer.result)
        self._open.add(conn)
        self._by_address[address] += 1
        try:
            return await self._stream(request, conn, sse)
        finally:
            conn.closed = True
            self.hub.drop(conn)  # nothing if the hub ended it already
            self._open.discard(conn)
            self._by_address[address] -= 1
            if not self._by_address[address]:
                del self._by_address[address]

    def _check_room(self, address: str) -> None:
        if len(self._open) >= limits.HTTP_WATCHES_MAX:
            raise HttpError(
                TOO_MANY_WATCHES,
                f"watch: the HTTP port serves {limits.HTTP_WATCHES_MAX} streams (its limit)",
            )
        if self._by_address[address] >= limits.HTTP_WATCHES_PER_ADDRESS_MAX:
            raise HttpError(
                TOO_MANY_WATCHES,
                f"watch: {address} holds {limits.HTTP_WATCHES_PER_ADDRESS_MAX} streams "
                "already (the limit); close one first",
            )

    async def _stream(
        self, request: web.Request, conn: _StreamConn, sse: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": SSE if sse else NDJSON,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
        except ConnectionError:
            return response  # gone before the headers left
        while True:
            data = conn.drain()
            if data:
                if not await self._write(request, response, data):
                    return response
                if conn.ended is not None:
                    break
                continue
            if conn.is_closing():
                return response  # the client went away: nothing more to say
            conn.ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limits.HTTP_WATCH_CHECK_S):
                    await conn.ready.wait()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _write(self, request: web.Request, response: web.StreamResponse, data: bytes) -> bool:
        """Hand ``data`` to the socket; False when the client is gone or reads nothing."""
        try:
            async with asyncio.timeout(limits.HTTP_WATCH_WRITE_STALL_S):
                await response.write(data)
        except ConnectionError:
            return False
        except TimeoutError:
            self.stalled += 1
            transport = request.transport
            if transport is not None:
                transport.abort()
            return False
        return True

    async def _on_shutdown(self, app: web.Application) -> None:
        """End every stream with an UNAVAILABLE line before the server's grace runs out."""
        for conn in list(self._open):
            conn.stopping = True
            self.hub.cancel(conn, conn.wid)

    def held_bytes(self) -> int:
        """Bytes held for HTTP streams now: reframed and not yet written, plus the
        sockets' unsent bytes (each stream's share is bounded by the hub)."""
        return sum(conn.get_write_buffer_size() for conn in self._open)


def _watch_args(request: web.Request) -> dict[str, Any]:
    query = request.query
    unknown = sorted(set(query) - {"prefix", "from_index"})
    if unknown:
        raise HttpError(
            codes.BAD_REQUEST, f"{unknown[0]}: unknown parameter (expected prefix, from_index)"
        )
    args: dict[str, Any] = {"prefix": query.get("prefix", "")}
    text = query.get("from_index")
    if text is None:
        text = _after_last_event_id(request)
    if text is not None:
        try:
            args["from_index"] = int(text)
        except ValueError:
            raise HttpError(
                codes.BAD_REQUEST, f"from_index: must be an integer, got {text!r}"
            ) from None
    return args


def _after_last_event_id(request: web.Request) -> str | None:
    """SSE resume: an EventSource sends the id of the last whole entry it got."""
    last = request.headers.get("Last-Event-ID")
    if last is None:
        return None
    try:
        return str(int(last) + 1)
    except ValueError:
        raise HttpError(
            codes.BAD_REQUEST, f"Last-Event-ID: must be an index, got {last!r}"
        ) from None


def _dict(result: Any) -> dict[str, Any]:
    return dict(result) if isinstance(result, dict) else {}


__all__ = ["NDJSON", "SSE", "TOO_MANY_WATCHES", "WatchRoutes"]
