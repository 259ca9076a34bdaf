"""An exclusive lock on a node's folder: one process per data dir.

Two ``serve`` processes on one folder would both append to ``log.jsonl`` and
both rewrite ``meta.json``: the log is torn in the middle and a vote can be
cast twice. So a node takes ``fcntl.flock`` on ``<node_dir>/LOCK`` before it
opens its storage, and holds it until it stops. A second process fails at
once with ``DataDirLocked`` naming the holder (the pid and host written into
the file by the process that holds it).

The kernel drops the lock when its holder exits, even on ``kill -9``, so a
stale ``LOCK`` file never blocks a restart; the file itself is left in place
(removing it would let two processes lock two different files). ``flock`` is
advisory and local: it does not protect a folder shared over NFS between
hosts. ``resonetics verify`` only reads and never takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Sequence

from resonetics.errors import DataDirLocked
from resonetics.limits import LOCK_HOLDER_BYTES_MAX
from resonetics.raft.entry import Entry
from resonetics.raft.ready import HardState, Snapshot
from resonetics.raft.types import Index
from resonetics.storage.api import RecoveredState
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.node_storage import FileNodeStorage

LOCK_NAME = "LOCK"


class DataDirLock:
    """``acquire()`` or ``DataDirLocked``; ``release()`` (idempotent) when done."""

    def __init__(self, node_dir: str) -> None:
        self.node_dir = node_dir
        self.path = os.path.join(node_dir, LOCK_NAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DataDirLock:
        os.makedirs(self.node_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DataDirLocked(self.node_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # A lock object dropped without release() (a failed start) frees the folder.
        self.release()


class LockedStorage:
    """A node folder's ``FileNodeStorage`` that owns the folder's lock: a ``load`` that
    refuses the folder (another node's or cluster's, corrupt) releases it, and so does
    ``close``, so a refused start leaves the folder free for the right node at once."""

    def __init__(self, storage: FileNodeStorage, lock: DataDirLock) -> None:
        self.inner = storage
        self.lock = lock

    @property
    def identity(self) -> NodeIdentity | None:
        return self.inner.identity

    def load(self) -> RecoveredState:
        try:
            return self.inner.load()
        except BaseException:
            self.lock.release()
            raise

    def append(self, entries: Sequence[Entry]) -> None:
        self.inner.append(entries)

    def truncate_from(self, index: Index) -> None:
        self.inner.truncate_from(index)

    def sync(self) -> None:
        self.inner.sync()

    def save_hard_state(self, hard_state: HardState, last_applied: Index) -> None:
        self.inner.save_hard_state(hard_state, last_applied)

    def save_snapshot(self, snapshot: Snapshot, last_applied: Index) -> None:
        self.inner.save_snapshot(snapshot, last_applied)

    def write_snapshot_file(self, snapshot: Snapshot) -> None:
        self.inner.write_snapshot_file(snapshot)

    def prepare_compaction(self, snapshot: Snapshot, keep_from: Entry | None) -> None:
        self.inner.prepare_compaction(snapshot, keep_from)

    def compact_to_snapshot(self, snapshot: Snapshot, keep_from: Entry | None = None) -> None:
        self.inner.compact_to_snapshot(snapshot, keep_from)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.lock.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, LOCK_HOLDER_BYTES_MAX, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


__all__ = ["LOCK_NAME", "DataDirLock", "LockedStorage"]
