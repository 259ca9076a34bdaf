"""Coalesce many small writes to a connection into one ``write()`` per loop iteration.

Under load one Ready answers hundreds of clients and sends several messages to
each peer; a ``write()`` per message is a syscall (and a TLS record) each, which
profiling showed as a quarter of the leader's time. Writers queue their bytes
here and one callback per loop iteration writes each connection's bytes joined.
The callback runs at the loop's next turn, which is before a disk write handed
to another thread has finished: bytes queued before an fsync still leave while
it runs.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Writable(Protocol):
    """What the outbox needs of a connection (a client connection, a stream writer)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...


class Outbox:
    """Pending bytes per connection, written together at the loop's next turn."""

    __slots__ = ("_pending", "_scheduled")

    def __init__(self) -> None:
        self._pending: dict[Writable, list[bytes]] = {}
        self._scheduled = False

    def add(self, writer: Writable, data: bytes) -> None:
        chunks = self._pending.get(writer)
        if chunks is None:
            self._pending[writer] = [data]
        else:
            chunks.append(data)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for writer, chunks in pending.items():
            if not writer.is_closing():
                writer.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))


__all__ = ["Outbox", "Writable"]
