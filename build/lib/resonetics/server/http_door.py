"""The HTTP port's door: how many connections it holds, and how long a first request may take.

Theory of operation
-------------------
aiohttp bounds what one request may send (header sizes and counts, the body) and
closes a connection idle for ``limits.HTTP_KEEPALIVE_S``, but it accepts every
connection it is offered, and each holds a file descriptor the node also needs
for its peers, its clients and its files. So the HTTP listener is the node's own
``asyncio`` server whose protocol factory hands each accepted connection to an
``HttpDoor`` before aiohttp sees it:

* beyond ``limits.HTTP_CONNECTIONS_MAX`` open connections, or
  ``limits.HTTP_CONNECTIONS_PER_ADDRESS_MAX`` from one address, the newcomer is
  answered ``503`` with a JSON body naming the limit (``Connection: close``) and
  closed; aiohttp never sees it;
* a connection must finish the head of its first request (the blank line after
  its headers) within ``limits.HTTP_FIRST_HEAD_S`` of opening, or it is closed
  (the slow-loris guard the client port has for its first line). Later requests
  on a kept-alive connection are bounded by aiohttp's idle timeout and the body
  deadline (``limits.HTTP_BODY_READ_S``).

Every refusal is counted by reason (``status`` → ``http`` → ``refused``). The
wrapper forwards every protocol call to aiohttp's handler unchanged once the
connection is admitted.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Final, cast

from resonetics import limits

#: Why a connection was refused or closed at the door (counted by reason).
TOO_MANY_CONNECTIONS: Final = "too many HTTP connections"
TOO_MANY_FROM_ADDRESS: Final = "too many HTTP connections from one address"
HEAD_TOO_SLOW: Final = "first request head not finished in time"

_HEAD_END: Final = b"\r\n\r\n"


def _refusal(message: str) -> bytes:
    body = json.dumps({"ok": False, "code": "UNAVAILABLE", "message": message}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class HttpDoor:
    """Counts the HTTP port's connections and judges each newcomer."""

    def __init__(
        self,
        connections_max: int = limits.HTTP_CONNECTIONS_MAX,
        per_address_max: int = limits.HTTP_CONNECTIONS_PER_ADDRESS_MAX,
        first_head_s: float = limits.HTTP_FIRST_HEAD_S,
    ) -> None:
        self.connections_max = connections_max
        self.per_address_max = per_address_max
        self.first_head_s = first_head_s
        self._by_address: Counter[str] = Counter()
        self.open = 0
        #: Connections refused or closed at the door, by reason.
        self.refused: Counter[str] = Counter()

    def factory(self, make_handler: Callable[[], asyncio.Protocol]) -> Callable[[], _Guarded]:
        """The protocol factory for ``loop.create_server``: aiohttp's, behind this door."""
        return lambda: _Guarded(self, make_handler)

    def _admit(self, address: str) -> str | None:
        """Take a slot for a connection from ``address``; the refusal's reason if none."""
        if self.open >= self.connections_max:
            return TOO_MANY_CONNECTIONS
        if self._by_address[address] >= self.per_address_max:
            return TOO_MANY_FROM_ADDRESS
        self.open += 1
        self._by_address[address] += 1
        return None

    def _release(self, address: str) -> None:
        self.open -= 1
        self._by_address[address] -= 1
        if not self._by_address[address]:
            del self._by_address[address]

    def _message(self, reason: str) -> str:
        if reason == TOO_MANY_CONNECTIONS:
            return f"the HTTP port holds {self.connections_max} connections (its limit); retry"
        return (
            f"{self.per_address_max} HTTP connections from your address are open (the "
            "limit); reuse one (keep-alive) or close one"
        )


class _Guarded(asyncio.Protocol):
    """One accepted connection: admitted (then aiohttp's handler gets every call) or not."""

    def __init__(self, door: HttpDoor, make_handler: Callable[[], asyncio.Protocol]) -> None:
        self._door = door
        self._make_handler = make_handler
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._address = "?"
        self._head_seen = False
        self._tail = b""
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        peer: Any = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        reason = self._door._admit(self._address)
        if reason is not None:
            self._door.refused[reason] += 1
            transport.write(_refusal(self._door._message(reason)))
            transport.close()
            return
        self._inner = self._make_handler()
        self._deadline = asyncio.get_running_loop().call_later(
            self._door.first_head_s, self._head_overdue
        )
        self._inner.connection_made(transport)

    def _head_overdue(self) -> None:
        self._deadline = None
        if not self._head_seen and self._transport is not None:
            self._door.refused[HEAD_TOO_SLOW] += 1
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return  # refused: nothing reaches aiohttp
        if not self._head_seen:
            if _HEAD_END in self._tail + data:
                self._head_seen = True
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None
            else:
                self._tail = (self._tail + data)[-(len(_HEAD_END) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        inner, self._inner = self._inner, None
        if inner is not None:
            self._door._release(self._address)
            inner.connection_lost(exc)


__all__ = ["HEAD_TOO_SLOW", "TOO_MANY_CONNECTIONS", "TOO_MANY_FROM_ADDRESS", "HttpDoor"]
