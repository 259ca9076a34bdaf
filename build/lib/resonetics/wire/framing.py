"""Sans-I/O line splitting with a hard bound on buffered bytes.

``LineBuffer`` is fed whatever bytes a socket produced and returns the complete
lines among them. It raises ``LineTooLong`` as soon as the line being
assembled passes ``max_line_bytes``, *before* buffering the rest of it: an
oversized line or a slow-loris that never sends ``\\n`` costs at most
``max_line_bytes`` of memory, and the owner can cut the connection at once.

After ``LineTooLong`` the buffer is poisoned (every later ``feed`` raises
again): the stream is no longer aligned on line boundaries, so nothing read
after it could be trusted to be a whole message.

Empty lines (and a ``\\r`` before ``\\n``) are tolerated and dropped, so a
human can talk to a node with ``nc``.
"""

from __future__ import annotations

from resonetics import limits
from resonetics.errors import LineTooLong


class LineBuffer:
    """Assembles ``\\n``-terminated lines; each returned line excludes its terminator."""

    __slots__ = ("_max", "_partial", "_poisoned")

    def __init__(self, max_line_bytes: int = limits.LINE_BYTES_MAX) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
        self._max = max_line_bytes
        # Invariant: len(self._partial) <= self._max (checked in feed()).
        self._partial = bytearray()
        self._poisoned = False

    @property
    def max_line_bytes(self) -> int:
        """The bound; it may be raised or lowered while a line is being assembled."""
        return self._max

    @max_line_bytes.setter
    def max_line_bytes(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {value}")
        self._max = value

    @property
    def pending_bytes(self) -> int:
        """Bytes of the line still being assembled (no ``\\n`` seen yet)."""
        return len(self._partial)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every line it completed, in order.

        Raises ``LineTooLong`` if any line, complete or partial, passes the limit.
        """
        if self._poisoned:
            raise LineTooLong(self._max, self._max + 1)
        if b"\n" not in data:
            self._check(len(self._partial) + len(data))
            self._partial += data
            return []
        parts = bytes(data).split(b"\n")
        if self._partial:
            parts[0] = bytes(self._partial) + parts[0]
        tail = parts.pop()
        self._check(len(tail))
        lines: list[bytes] = []
        for part in parts:
            self._check(len(part))
            line = part[:-1] if part.endswith(b"\r") else part
            if line:
                lines.append(line)
        self._partial = bytearray(tail)
        return lines

    def _check(self, size: int) -> None:
        if size > self._max:
            self._poisoned = True
            self._partial = bytearray()
            raise LineTooLong(self._max, size)


__all__ = ["LineBuffer", "LineTooLong"]
