"""A snapshot being received, kept in a scratch file beside the node's data.

The core appends each InstallSnapshot chunk once it is the one expected, and reads
the whole back to verify its checksum when the last chunk arrives (see
``raft.snapshot.Spool``). Nothing here is fsynced: the file is scratch. A crash
loses it, the restarted follower has no stream in progress, and the leader starts
the snapshot again from offset 0; a leftover file is removed when the next stream
begins and, by its ``.tmp`` name, when the node's storage loads.
"""

from __future__ import annotations

from resonetics.storage.fs import FileSystem

#: File name of the spool inside a node's folder.
SPOOL_NAME = "snapshot.incoming.tmp"


class FileSpool:
    """``raft.snapshot.Spool`` over one scratch file."""

    __slots__ = ("_fs", "_path", "_size")

    def __init__(self, fs: FileSystem, path: str) -> None:
        self._fs = fs
        self._path = path
        self._size = 0
        if fs.exists(path):
            fs.remove(path)

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        self._fs.append(self._path, data)
        self._size += len(data)

    def read(self) -> bytes:
        return self._fs.read(self._path) if self._size else b""

    def read_from(self, offset: int) -> bytes:
        return self._fs.read_from(self._path, offset) if self._size > offset else b""

    def discard(self) -> None:
        if self._fs.exists(self._path):
            self._fs.remove(self._path)
        self._size = 0


__all__ = ["SPOOL_NAME", "FileSpool"]
