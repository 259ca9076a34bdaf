"""The file operations storage code may use, on the real disk or on a crashable twin.

Theory of operation
-------------------
Every byte storage writes goes through a ``FileSystem``: a dozen path-based
calls, no file objects. ``OsFileSystem`` maps them onto ``os`` calls;
``MemoryFileSystem`` keeps everything in memory and models what a crash can do
to a POSIX file system, so the simulator and the crash tests run the *real*
storage code against every failure a disk can show:

* each file (an inode) has *durable* bytes (as of its last ``fsync``) and
  *current* bytes; a crash keeps the durable bytes, and, when the crash is
  given a seeded ``random.Random``, may instead keep the current bytes or keep
  a prefix of the last unsynced write on top of the durable ones (a torn write);
  a file written in place (``write_at`` into space ``allocate`` made) may also
  keep any subset of its unsynced 512-byte sectors, the others still holding
  what they held at the last ``fsync`` (zeros, in allocated space): a disk
  writes back the pages of a file in no particular order;
* each directory entry change (create, ``replace``, ``remove``) is pending
  until ``fsync_dir`` of its folder; a crash loses pending changes (all of
  them, or with a ``Random`` a random prefix of them, in order);
* ``crash_at(k)`` makes the k-th operation (counted from 0 since the last
  ``crash``/construction) raise ``SimulatedCrash``, a write leaving half its
  bytes behind; every later operation raises too until ``crash()`` is called.
  Running a script once and reading ``op_count`` tells a test how many crash
  points there are to enumerate.

Directories are simplified: ``mkdir`` is durable at once (the storage code
still fsyncs the parent, which is what the real disk needs).
"""

from __future__ import annotations

import errno
import os
import posixpath
import random
from dataclasses import dataclass, field
from typing import Protocol


class SimulatedCrash(BaseException):
    """The simulated machine lost power during a file operation.

    A ``BaseException`` so that no ``except Exception`` in the code under test
    can swallow it: a crashed process runs no more code.
    """


class FileSystem(Protocol):
    """Path-based file operations. Nothing is durable until ``fsync`` (data)
    or ``fsync_dir`` (a created, replaced or removed name)."""

    def read(self, path: str) -> bytes:
        """The whole file; ``FileNotFoundError`` if absent."""
        ...

    def read_from(self, path: str, offset: int) -> bytes:
        """The file from byte ``offset`` to its end; ``FileNotFoundError`` if absent."""
        ...

    def append(self, path: str, data: bytes) -> None:
        """Write ``data`` at the end of the file, creating it if absent."""
        ...

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        """Write ``data`` at byte ``offset`` (at most the file's length), creating the
        file if absent; the file grows only if the write runs past its end."""
        ...

    def allocate(self, path: str, size: int) -> int:
        """Make the file at least ``size`` bytes long, the new bytes zeros, their
        blocks reserved where the file system can; return its new length (which
        may be more: the implementation picks how far ahead to allocate). Durable
        with the next ``fsync``. Why: an ``fsync`` after an append that grows the
        file also commits its new size and blocks (a journal commit), and one
        after a write into allocated space does not (``docs/storage.md``)."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Create or overwrite the file so that it holds exactly ``data``."""
        ...

    def fsync(self, path: str) -> None:
        """Make the file's bytes and length durable (its name needs ``fsync_dir``)."""
        ...

    def truncate(self, path: str, size: int) -> None:
        """Cut the file to ``size`` bytes."""
        ...

    def replace(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` over ``dst`` (``os.replace``)."""
        ...

    def fsync_dir(self, path: str) -> None: ...

    def exists(self, path: str) -> bool: ...

    def isdir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]:
        """Names in the folder, sorted."""
        ...

    def remove(self, path: str) -> None: ...

    def mkdir(self, path: str) -> None:
        """Create the folder and its parents; no error if it exists."""
        ...

    def close(self) -> None:
        """Release any cached handles (nothing is made durable by it)."""
        ...


def atomic_write(fs: FileSystem, path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file.

    temp file, fsync, replace, fsync of the folder (DESIGN §4). The temp name is
    fixed (``path + ".tmp"``): a leftover from an earlier crash is overwritten.
    """
    tmp = path + ".tmp"
    fs.write(tmp, data)
    fs.fsync(tmp)
    fs.replace(tmp, path)
    fs.fsync_dir(posixpath.dirname(path) or ".")


#: How far ahead ``OsFileSystem.allocate`` reserves a file's space: one file-system
#: metadata commit per this many bytes of log instead of one per fsync.
ALLOCATE_AHEAD_BYTES = 16 * 1024 * 1024

#: ``posix_fallocate`` errors that mean "not here" (no such call, a file system that
#: cannot): the file is extended with a hole instead, which reads as zeros too.
_NO_FALLOCATE = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})

#: ``fdatasync`` where the platform has it: a file's data and length, not its times.
_sync_data = getattr(os, "fdatasync", os.fsync)


class OsFileSystem:
    """The real disk. Keeps one descriptor per file written (an append descriptor, or
    a plain one for ``write_at``) to save an open per batch."""

    def __init__(self, allocate_ahead: int = ALLOCATE_AHEAD_BYTES) -> None:
        self._fds: dict[str, int] = {}
        self._positioned: dict[str, int] = {}
        self._allocate_ahead = allocate_ahead

    def _forget(self, path: str) -> None:
        for fds in (self._fds, self._positioned):
            fd = fds.pop(path, None)
            if fd is not None:
                os.close(fd)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def read_from(self, path: str, offset: int) -> bytes:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()

    def append(self, path: str, data: bytes) -> None:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._fds[path] = fd
        _write_all(fd, data)

    def _positioned_fd(self, path: str) -> int:
        # Not O_APPEND: Linux's pwrite on an O_APPEND descriptor writes at the end.
        fd = self._positioned.get(path)
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            self._positioned[path] = fd
        return fd

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        fd = self._positioned_fd(path)
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written

    def allocate(self, path: str, size: int) -> int:
        fd = self._positioned_fd(path)
        length = os.fstat(fd).st_size
        if size <= length:
            return length
        target = size + self._allocate_ahead
        try:
            _fallocate(fd, length, target - length)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            target = size  # no room for the chunk: the bytes asked for may still fit
            _fallocate(fd, length, target - length)
        return target

    def write(self, path: str, data: bytes) -> None:
        self._forget(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)

    def fsync(self, path: str) -> None:
        # fdatasync: what reads the bytes back (length, blocks) is synced, times are not.
        fd = self._fds.get(path)
        if fd is None:
            fd = self._positioned.get(path)
        if fd is not None:
            _sync_data(fd)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            _sync_data(fd)
        finally:
            os.close(fd)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(path, size)

    def replace(self, src: str, dst: str) -> None:
        self._forget(src)
        self._forget(dst)
        os.replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def remove(self, path: str) -> None:
        self._forget(path)
        os.remove(path)

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def close(self) -> None:
        for path in list(self._fds):
            self._forget(path)


def _fallocate(fd: int, offset: int, length: int) -> None:
    """Reserve ``length`` bytes at ``offset`` (the file grows, reading as zeros)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, offset, length)
            return
        except OSError as exc:
            if exc.errno not in _NO_FALLOCATE:
                raise
    os.ftruncate(fd, offset + length)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(slots=True)
class _Inode:
    """One file's bytes: what survives a crash and what the process sees."""

    durable: bytearray = field(default_factory=bytearray)
    current: bytearray = field(default_factory=bytearray)
    #: The lowest offset written or cut since the last fsync (None: nothing was), so
    #: the next fsync copies only the bytes from there (O(batch), not O(file)).
    changed_from: int | None = None
    #: Written in place (``write_at``, ``allocate``): a crash may keep any subset of
    #: the unsynced sectors.
    scattered: bool = False
    #: The last write since the last fsync, for torn writes: (offset, new bytes,
    #: the bytes it overwrote). Keeping only the overwritten range makes each
    #: write O(its size), not O(file size).
    last_write: tuple[int, bytes, bytes] | None = None
    dirty: bool = False


@dataclass(frozen=True, slots=True)
class _NameOp:
    """A directory change not yet made durable by ``fsync_dir``."""

    folder: str
    name: str
    inode: _Inode | None  # None: the name was removed


class MemoryFileSystem:
    """An in-memory, crashable, deterministic twin of ``OsFileSystem``."""

    def __init__(self, allocate_ahead: int = 1024) -> None:
        #: How far past the size asked for ``allocate`` extends a file: small, so that
        #: tests cross allocation boundaries often.
        self.allocate_ahead = allocate_ahead
        self._names: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._pending: list[_NameOp] = []
        self._dirs: set[str] = {"/", "."}
        self._crash_at: int | None = None
        self._crashed = False
        #: Operations done since construction or the last ``crash()``.
        self.op_count = 0

    # --- crash control -----------------------------------------------------------
    def crash_at(self, k: int | None) -> None:
        """Make operation number ``k`` (0-based, from now's count) raise ``SimulatedCrash``."""
        self._crash_at = k

    @property
    def crashed(self) -> bool:
        return self._crashed

    def crash(self, rng: random.Random | None = None) -> None:
        """Power loss: keep only what a disk may keep, then let operations run again.

        Without ``rng`` exactly the durable state survives; with it, each file
        may also keep its unsynced bytes or a torn prefix of its last write, and
        a random prefix of the pending directory changes survives.
        """
        names = dict(self._durable_names)
        keep = rng.randint(0, len(self._pending)) if rng is not None else 0
        for op in self._pending[:keep]:
            _apply_name_op(names, op)
        for inode in {id(i): i for i in names.values()}.values():
            _crash_inode(inode, rng)
        self._names = names
        self._durable_names = dict(names)
        self._pending = []
        self._crash_at = None
        self._crashed = False
        self.op_count = 0

    def _tick(self) -> bool:
        """Count an operation; True if this one is the crash point."""
        if self._crashed:
            raise SimulatedCrash("the simulated machine is down")
        k = self.op_count
        self.op_count += 1
        if self._crash_at is not None and k == self._crash_at:
            self._crashed = True
            return True
        return False

    def _die(self) -> SimulatedCrash:
        return SimulatedCrash(f"crash at operation {self.op_count - 1}")

    # --- names -------------------------------------------------------------------
    def _norm(self, path: str) -> str:
        return posixpath.normpath(path)

    def _inode(self, path: str) -> _Inode:
        inode = self._names.get(self._norm(path))
        if inode is None:
            raise FileNotFoundError(path)
        return inode

    def _set_name(self, path: str, inode: _Inode | None) -> None:
        path = self._norm(path)
        folder = posixpath.dirname(path) or "."
        if folder not in self._dirs:
            raise FileNotFoundError(folder)
        op = _NameOp(folder, path, inode)
        _apply_name_op(self._names, op)
        self._pending.append(op)

    # --- FileSystem ---------------------------------------------------------------
    def read(self, path: str) -> bytes:
        if self._tick():
            raise self._die()
        return bytes(self._inode(path).current)

    def read_from(self, path: str, offset: int) -> bytes:
        if self._tick():
            raise self._die()
        return bytes(memoryview(self._inode(path).current)[offset:])

    def _created(self, path: str) -> _Inode:
        """The file's inode, made (a pending name) if there is none."""
        norm = self._norm(path)
        if norm not in self._names:
            self._set_name(norm, _Inode())
        return self._names[norm]

    def append(self, path: str, data: bytes) -> None:
        crash = self._tick()
        inode = self._created(path)
        _write(inode, len(inode.current), data[: len(data) // 2] if crash else data)
        if crash:
            raise self._die()

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        crash = self._tick()
        inode = self._created(path)
        if offset > len(inode.current):
            raise ValueError(f"write_at({offset}) past the end of {path}")
        inode.scattered = True
        _write(inode, offset, data[: len(data) // 2] if crash else data)
        if crash:
            raise self._die()

    def allocate(self, path: str, size: int) -> int:
        crash = self._tick()
        inode = self._created(path)
        length = len(inode.current)
        if size > length:
            inode.scattered = True
            _write(inode, length, bytes(size + self.allocate_ahead - length))
            length = size + self.allocate_ahead
        if crash:
            raise self._die()
        return length

    def write(self, path: str, data: bytes) -> None:
        # A new inode under the name: a crash before ``fsync_dir`` brings the old
        # file back whole. (A real O_TRUNC could also leave it empty; storage only
        # ever write()s fresh temp files, so the difference never shows.)
        crash = self._tick()
        inode = _Inode()
        self._set_name(path, inode)
        _write(inode, 0, data[: len(data) // 2] if crash else data)
        if crash:
            raise self._die()

    def fsync(self, path: str) -> None:
        if self._tick():
            raise self._die()
        inode = self._inode(path)
        if inode.changed_from is not None:
            del inode.durable[inode.changed_from :]
            inode.durable += inode.current[inode.changed_from :]
        inode.changed_from = None
        inode.last_write = None
        inode.dirty = False

    def truncate(self, path: str, size: int) -> None:
        if self._tick():
            raise self._die()
        inode = self._inode(path)
        del inode.current[size:]
        inode.changed_from = _lowest(inode.changed_from, size)
        inode.dirty = True
        inode.last_write = None

    def replace(self, src: str, dst: str) -> None:
        if self._tick():
            raise self._die()
        inode = self._inode(src)
        self._set_name(dst, inode)
        self._set_name(src, None)

    def fsync_dir(self, path: str) -> None:
        if self._tick():
            raise self._die()
        folder = self._norm(path)
        rest: list[_NameOp] = []
        for op in self._pending:
            if op.folder == folder:
                _apply_name_op(self._durable_names, op)
            else:
                rest.append(op)
        self._pending = rest

    def exists(self, path: str) -> bool:
        if self._tick():
            raise self._die()
        norm = self._norm(path)
        return norm in self._names or norm in self._dirs

    def isdir(self, path: str) -> bool:
        if self._tick():
            raise self._die()
        return self._norm(path) in self._dirs

    def listdir(self, path: str) -> list[str]:
        if self._tick():
            raise self._die()
        folder = self._norm(path)
        if folder not in self._dirs:
            raise FileNotFoundError(path)
        found = {posixpath.basename(p) for p in [*self._names, *self._dirs]}
        return sorted(
            n
            for n in found
            if any(posixpath.join(folder, n) in s for s in (self._names, self._dirs))
        )

    def remove(self, path: str) -> None:
        if self._tick():
            raise self._die()
        self._inode(path)
        self._set_name(path, None)

    def mkdir(self, path: str) -> None:
        if self._tick():
            raise self._die()
        norm = self._norm(path)
        while norm not in self._dirs:
            self._dirs.add(norm)
            norm = posixpath.dirname(norm) or "."

    def close(self) -> None:
        """Nothing to release; not counted as an operation."""

    # --- inspection for tests ---------------------------------------------------------
    def durable_bytes(self, path: str) -> bytes | None:
        """What a crash without tearing would leave at ``path`` (None: no such file)."""
        inode = self._durable_names.get(self._norm(path))
        return None if inode is None else bytes(inode.durable)


def _apply_name_op(names: dict[str, _Inode], op: _NameOp) -> None:
    if op.inode is None:
        names.pop(op.name, None)
    else:
        names[op.name] = op.inode


def _write(inode: _Inode, offset: int, data: bytes) -> None:
    old = bytes(inode.current[offset : offset + len(data)])
    inode.current[offset : offset + len(data)] = data
    inode.changed_from = _lowest(inode.changed_from, offset)
    inode.last_write = (offset, bytes(data), old)
    inode.dirty = True


def _lowest(changed_from: int | None, offset: int) -> int:
    return offset if changed_from is None else min(changed_from, offset)


#: The unit a disk writes whole (``MemoryFileSystem``'s scattered crashes).
SECTOR_BYTES = 512


def _crash_inode(inode: _Inode, rng: random.Random | None) -> None:
    """Reset one file to a state a disk may show after power loss."""
    after = bytes(inode.durable)
    if rng is not None and inode.dirty:
        choice = rng.randrange(4 if inode.scattered else 3)
        if choice == 3:
            after = _scattered(inode, rng)
        elif choice == 1:
            after = bytes(inode.current)
        elif choice == 2 and inode.last_write is not None:
            # Every earlier unsynced change landed, the last write only in part.
            offset, data, old = inode.last_write
            cur = bytes(inode.current)
            base = cur[:offset] + old + cur[offset + len(data) :]
            piece = data[: rng.randint(0, len(data))]
            after = base[:offset] + piece + base[offset + len(piece) :]
    inode.durable = bytearray(after)
    inode.current = bytearray(after)
    inode.changed_from = None
    inode.last_write = None
    inode.dirty = False


def _scattered(inode: _Inode, rng: random.Random) -> bytes:
    """The file's length as of its last fsync or now, and each sector changed since
    the fsync as it is now or as it was (zeros past the old length)."""
    durable, current = bytes(inode.durable), bytes(inode.current)
    size = rng.choice((len(durable), len(current)))
    after = bytearray(durable[:size].ljust(size, b"\0"))
    start = (inode.changed_from or 0) // SECTOR_BYTES * SECTOR_BYTES
    for at in range(start, min(size, len(current)), SECTOR_BYTES):
        if rng.random() < 0.5:
            piece = current[at : min(at + SECTOR_BYTES, size)]
            after[at : at + len(piece)] = piece
    return bytes(after)


__all__ = ["FileSystem", "MemoryFileSystem", "OsFileSystem", "SimulatedCrash", "atomic_write"]
