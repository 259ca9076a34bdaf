"""A minimal HTTP/1.1 client for keep-alive POSTs of small JSON bodies.

Enough for etcd's gRPC-gateway (``/v3/kv/put``, ``/v3/kv/range``): one request
in flight per connection, responses with ``Content-Length`` or chunked
encoding. ``parse_response`` is pure, so it is tested without a socket.
"""

from __future__ import annotations

import asyncio
from typing import cast

from bench.adapters.base import RequestFailed, fail_pending

_HEAD_END = b"\r\n\r\n"


def build_request(path: str, host: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def parse_response(buf: bytes | bytearray) -> tuple[int, bytes, int] | None:
    """(status, body, bytes consumed) for the first complete response in ``buf``, else None."""
    end = buf.find(_HEAD_END)
    if end < 0:
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    start = end + len(_HEAD_END)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return _parse_chunked(buf, start, status)
    length = int(headers.get("content-length", "0"))
    if len(buf) < start + length:
        return None
    return status, bytes(buf[start : start + length]), start + length


def _parse_chunked(buf: bytes | bytearray, pos: int, status: int) -> tuple[int, bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return status, bytes(body), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2


class _HttpProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = parse_response(self.buffer)
        if parsed is None:
            return
        status, body, used = parsed
        del self.buffer[:used]
        future = self.pending.pop(0, None)
        if future is not None and not future.done():
            if status == 200:
                future.set_result(body)
            else:
                future.set_exception(RequestFailed(f"HTTP {status}: {body[:200]!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        fail_pending(self.pending, f"connection lost: {exc}")


class HttpConnection:
    """One keep-alive connection; ``post`` must not be called concurrently."""

    def __init__(self, protocol: _HttpProtocol, host: str) -> None:
        self._protocol = protocol
        self._host = host

    @classmethod
    async def open(cls, address: str) -> HttpConnection:
        host, _, port = address.rpartition(":")
        _, protocol = await asyncio.get_running_loop().create_connection(
            _HttpProtocol, host, int(port)
        )
        return cls(protocol, address)

    async def post(self, path: str, body: bytes) -> bytes:
        transport = self._protocol.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._protocol.pending[0] = future
        transport.write(build_request(path, self._host, body))
        return await future

    def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.close()


__all__ = ["HttpConnection", "build_request", "parse_response"]
