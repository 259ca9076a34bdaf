"""Client side of watch streams: ``AsyncClient.watch`` and ``Client.watch``.

Theory of operation
-------------------
A ``WatchStream`` is an async iterator of ``WatchEvent`` (index, term, hash, key,
kind, value) that survives node failures. It keeps one number, ``through``: every
change under the prefix with index <= ``through`` has been handed to the caller (or
is in the one message being handed out). Any node may serve a watch (its events come
from its applied, hence committed, log), so when the stream's node goes away — the
connection drops, the node is silent for ``WATCH_SILENCE_S`` (it sends progress
notices every second), or it ends the stream (``WATCH_TOO_SLOW``, ``COMPACTED``,
``UNAVAILABLE``) — the stream subscribes again, on the next address, with
``from_index = through + 1``. A node's messages hold whole entries and events come in
log order, so events with index <= ``through`` are duplicates of what was delivered
and are dropped: the caller sees every change once, in log order, with no gap.

``through`` moves with each message: to the last event's index, or to a progress
notice's index (the node applied that far, so nothing under the prefix up to it is
missing). If every node answers ``COMPACTED`` the stream raises ``Compacted`` carrying
the oldest index still served; ``Forbidden``/``Unauthenticated``/``BadRequest`` are
raised at once (every node would repeat them). When no node accepts the watch within
the client's ``timeout``, ``NoNodeAnswered`` is raised.

Each stream has its own connection (the request connection carries only
request/response traffic); the caller's slowness is pushed back to the node by TCP,
which cuts a watcher that falls too far behind — the stream then resumes, or raises
``Compacted`` if the history it needs is gone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

from resonetics import errors, limits
from resonetics.wire import codes
from resonetics.wire.auth import encode_auth
from resonetics.wire.client import ClientResponse
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.framing import LineBuffer
from resonetics.wire.watch import (
    WatchEnd,
    WatchEvent,
    WatchEvents,
    WatchMessage,
    WatchProgress,
    decode_watch_message,
)

if TYPE_CHECKING:
    from resonetics.client import AsyncClient

_READ_BYTES = 1 << 16
#: The envelope id of the watch on its own connection (and 0 for the Auth line).
_WATCH_ID = 1
#: Pause before another round over every address when none accepted the watch, seconds.
_ROUND_PAUSE_S = 0.1
#: Codes no other node would answer differently: raised at once.
_FINAL = {
    codes.FORBIDDEN: errors.Forbidden,
    codes.UNAUTHENTICATED: errors.Unauthenticated,
    codes.TOO_LARGE: errors.TooLarge,
}


class _Lost(Exception):
    """The stream's node went away or ended the stream: resume elsewhere."""


class WatchStream:
    """The changes under ``prefix`` from ``from_index`` on (module theory of operation)."""

    def __init__(self, client: AsyncClient, prefix: str, from_index: int | None = None) -> None:
        self._client = client
        self.prefix = prefix
        self._from_index = from_index
        #: Every change with index <= through was delivered; None: not subscribed yet.
        self.through: int | None = None if from_index is None else from_index - 1
        #: The node serving the stream now, and how many times the stream resumed.
        self.address: str | None = None
        self.resumes = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lines = LineBuffer(limits.LINE_BYTES_MAX)
        self._ready: collections.deque[bytes] = collections.deque()
        self._events: collections.deque[WatchEvent] = collections.deque()
        self._next_address = 0
        self._closed = False

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            if self._writer is None:
                await self._subscribe()
                continue
            try:
                self._take(await self._next_message())
            except _Lost:
                await self._disconnect()
                self.resumes += 1
        return self._events.popleft()

    async def start(self) -> WatchStream:
        """Subscribe now rather than at the first ``__anext__`` (so a watch "from now"
        starts before the caller's next write); returns the stream."""
        if self._writer is None and not self._closed:
            await self._subscribe()
        return self

    async def aclose(self) -> None:
        """End the stream (the node forgets the watch when its connection closes)."""
        self._closed = True
        await self._disconnect()

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- messages -----------------------------------------------------------------------
    def _take(self, message: WatchMessage) -> None:
        through = self.through if self.through is not None else 0
        if isinstance(message, WatchEvents):
            fresh = [e for e in message.events if e.index > through]
            self._events.extend(fresh)
            if message.events:
                self.through = max(through, message.events[-1].index)
        elif isinstance(message, WatchProgress):
            self.through = max(through, message.index)
        elif isinstance(message, WatchEnd):
            raise _Lost(f"{message.code}: {message.message}")
        else:
            raise _Lost("unexpected response on a watch stream")

    async def _next_message(self) -> WatchMessage:
        while not self._ready:
            assert self._reader is not None
            try:
                chunk = await asyncio.wait_for(
                    self._reader.read(_READ_BYTES), limits.WATCH_SILENCE_S
                )
            except (OSError, TimeoutError) as exc:
                raise _Lost(str(exc)) from None
            if not chunk:
                raise _Lost("connection closed")
            try:
                self._ready.extend(self._lines.feed(chunk))
            except errors.LineTooLong as exc:
                raise _Lost(str(exc)) from None
        try:
            env = decode_envelope(self._ready.popleft())
            return decode_watch_message(env)
        except errors.ResoneticsError as exc:
            raise _Lost(f"bad message: {exc}") from None

    # --- subscribing --------------------------------------------------------------------
    async def _subscribe(self) -> None:
        """Open the watch on some node, from ``through + 1``; raise when none can serve it."""
        client = self._client
        deadline = time.monotonic() + client.timeout
        tried: dict[str, str] = {}
        compacted: dict[str, int] = {}
        addresses = client.addresses
        while True:
            address = addresses[self._next_address % len(addresses)]
            self._next_address += 1
            try:
                await self._open(address, tried, compacted)
                return
            except _Lost as exc:
                tried[address] = str(exc)
                await self._disconnect()
            if len(compacted) >= len(addresses):
                raise errors.Compacted(self._resume_index(), min(compacted.values()))
            if time.monotonic() >= deadline:
                raise errors.NoNodeAnswered("watch", client.timeout, tried)
            if self._next_address % len(addresses) == 0:
                await asyncio.sleep(_ROUND_PAUSE_S)

    def _resume_index(self) -> int:
        return (self.through or 0) + 1

    async def _open(self, address: str, tried: dict[str, str], compacted: dict[str, int]) -> None:
        client = self._client
        host, _, port = address.rpartition(":")
        context: ssl.SSLContext | None = client._ssl
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    int(port),
                    limit=limits.LINE_BYTES_MAX,
                    ssl=context,
                    server_hostname=host if context else None,
                ),
                client.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise _Lost(str(exc) or type(exc).__name__) from None
        self._reader, self._writer = reader, writer
        self._lines = LineBuffer(limits.LINE_BYTES_MAX)
        self._ready.clear()
        now = int(time.time() * 1000)
        if client._token is not None:
            writer.write(encode_auth(client._token, now, 0))
            self._answer(await self._response())
        args: dict[str, Any] = {"prefix": self.prefix}
        if self.through is not None:
            args["from_index"] = self.through + 1
        request = {
            "client_id": client.client_id,
            "request_id": uuid.uuid4().hex,
            "op": "watch",
            "args": args,
        }
        writer.write(encode_envelope("ClientRequest", request, now, _WATCH_ID))
        response = await self._response()
        if response.code == codes.COMPACTED:
            oldest = (response.result or {}).get("oldest_index", 0)
            compacted[address] = int(oldest)
            raise _Lost(f"compacted: oldest index {oldest}")
        result = self._answer(response)
        if self.through is None:
            self.through = int(result["from_index"]) - 1
        self.address = address

    async def _response(self) -> ClientResponse:
        message = await self._next_message()
        if not isinstance(message, ClientResponse):
            raise _Lost("a watch message before the watch's answer")
        return message

    @staticmethod
    def _answer(response: ClientResponse) -> Any:
        if response.code == codes.OK:
            return response.result
        message = response.message if isinstance(response.message, str) else response.code
        final = _FINAL.get(response.code)
        if final is not None:
            raise final(message)
        if response.code == codes.BAD_REQUEST:
            field, _, reason = message.partition(": ")
            raise errors.BadRequest(field, reason or message)
        raise _Lost(f"{response.code}: {message}")

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._events_pending_reset()
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _events_pending_reset(self) -> None:
        self._ready.clear()


def blocking_watch(run: Any, stream: WatchStream) -> Generator[WatchEvent, None, None]:
    """``stream``, subscribed now, as a blocking iterator; ``run`` runs a coroutine on the
    client's loop. Closing the iterator ends the stream."""
    run(stream.start())
    return _blocking(run, stream)


def _blocking(run: Any, stream: WatchStream) -> Generator[WatchEvent, None, None]:
    try:
        while True:
            try:
                yield run(stream.__anext__())
            except StopAsyncIteration:
                return
    finally:
        run(stream.aclose())


__all__ = ["WatchEvent", "WatchStream", "blocking_watch"]
