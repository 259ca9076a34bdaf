"""A backup file: one cluster's applied state at a committed index, checkable offline.

Theory of operation
-------------------
``resonetics snapshot save`` writes, and ``snapshot restore``/``inspect`` read, a
file of two parts::

    {"format": "resonetics-backup", "version": 1, "cluster_id": ..., "node": ...,
     "machine": "kv", "last_index": N, "last_term": T, "chain_hash": H,
     "created_ms": ..., "body_bytes": B, "body_sha256": S, "header_sha256": X}\\n
    <B bytes: the state at N in snapshot.json's own format (storage/snapshot_file.py)>

``header_sha256`` covers the header's other fields (canonical JSON), ``body_sha256``
the body's bytes; the body carries its own checksum as every ``snapshot.json``
does. ``read_backup`` checks, in order, and names the first thing wrong: the
header line is there and is a backup header of a version it knows, its checksum,
the body's length (a truncated copy), the body's checksum, that the body decodes
as a snapshot, that the snapshot sits at the header's index, term and chain hash,
and that the replicated state inside records the same position (the state's own
``last_applied`` and hash, written when it was applied). Nothing is trusted
before it is checked; every failure is a ``BackupError``, never a traceback.

Whether the chain hash is the *cluster's* at that index is a question for the
cluster: ``snapshot save`` asks a majority of the voters (``chain_hash``) before it
reports success. A backup holds every key and value: it is written readable by its
owner only (0600), like a cluster key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from resonetics import limits
from resonetics.decode_errors import UNREADABLE
from resonetics.errors import BackupError, StorageCorruption
from resonetics.raft.ready import Snapshot
from resonetics.storage.snapshot_file import decode_snapshot

BACKUP_FORMAT: Final = "resonetics-backup"
BACKUP_VERSION: Final = 1
#: A backup file's permissions: it holds all data.
BACKUP_FILE_MODE: Final = 0o600
_CANONICAL = msgspec.json.Encoder(order="sorted")


class BackupHeader(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The first line of a backup file (see the module docstring)."""

    format: str
    version: int
    cluster_id: str
    #: The node (the leader) that served the state.
    node: str
    machine: str
    last_index: int
    last_term: int
    chain_hash: str
    created_ms: int
    body_bytes: int
    body_sha256: str
    header_sha256: str = ""

    def digest(self) -> str:
        """sha256 of the header's fields other than ``header_sha256``."""
        fields = msgspec.structs.asdict(self)
        fields.pop("header_sha256")
        return hashlib.sha256(_CANONICAL.encode(fields)).hexdigest()

    def sealed(self) -> BackupHeader:
        return msgspec.structs.replace(self, header_sha256=self.digest())

    def to_line(self) -> bytes:
        return _CANONICAL.encode(self.sealed()) + b"\n"


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup file that passed every check ``read_backup`` makes."""

    header: BackupHeader
    snapshot: Snapshot


class _StatePosition(msgspec.Struct):
    """The position the replicated state records (``machine/replicated.py``'s snapshot)."""

    last_applied: int
    last_applied_term: int
    last_applied_hash: str


def read_backup(path: Path) -> Backup:
    """Read and check ``path`` whole; ``BackupError`` naming the first thing wrong."""
    name = str(path)
    try:
        with path.open("rb") as f:
            line = f.readline(limits.BACKUP_HEADER_BYTES_MAX + 1)
            body = f.read()
    except FileNotFoundError:
        raise BackupError(name, "no such file") from None
    except IsADirectoryError:
        raise BackupError(name, "is a directory, not a backup file") from None
    except OSError as exc:
        raise BackupError(name, f"cannot be read: {exc.strerror or exc}") from None
    header = parse_header(name, line)
    check_body(name, header, body)
    return Backup(header, decode_body(name, header, body))


def parse_header(name: str, line: bytes) -> BackupHeader:
    """The first line, checked (format, version, checksum)."""
    if not line:
        raise BackupError(name, "empty file: not a Resonetics backup")
    if not line.endswith(b"\n"):
        raise BackupError(name, "no complete header line: not a Resonetics backup, or truncated")
    try:
        raw = msgspec.json.decode(line)
    except UNREADABLE:
        raise BackupError(name, "first line is not JSON: not a Resonetics backup") from None
    if not isinstance(raw, dict) or raw.get("format") != BACKUP_FORMAT:
        raise BackupError(name, "first line is not a backup header: not a Resonetics backup")
    if raw.get("version") != BACKUP_VERSION:
        raise BackupError(
            name, f"backup version {raw.get('version')!r}; this version reads {BACKUP_VERSION}"
        )
    try:
        header = msgspec.convert(raw, type=BackupHeader)
    except msgspec.ValidationError as exc:
        raise BackupError(name, f"malformed backup header: {exc}") from None
    if header.header_sha256 != header.digest():
        raise BackupError(name, "header checksum mismatch: the header was edited or damaged")
    return header


def check_body(name: str, header: BackupHeader, body: bytes) -> None:
    if len(body) < header.body_bytes:
        raise BackupError(
            name,
            f"truncated: the header announces {header.body_bytes} bytes of state, "
            f"the file holds {len(body)}",
        )
    if len(body) > header.body_bytes:
        raise BackupError(name, f"{len(body) - header.body_bytes} unexpected bytes after the state")
    if hashlib.sha256(body).hexdigest() != header.body_sha256:
        raise BackupError(name, "state checksum mismatch: the file was damaged or edited")


def decode_body(name: str, header: BackupHeader, body: bytes) -> Snapshot:
    """The snapshot inside, checked against the header's position."""
    try:
        snapshot = decode_snapshot(body, name)
    except StorageCorruption as exc:
        raise BackupError(name, f"the state inside is not a snapshot: {exc.reason}") from None
    meta = snapshot.meta
    claimed = (header.last_index, header.last_term, header.chain_hash)
    held = (meta.last_included_index, meta.last_included_term, meta.last_included_hash)
    if held != claimed:
        raise BackupError(
            name, f"the state inside is at (index, term, hash) {held}, the header says {claimed}"
        )
    # Format 3 records it on the JSON line before the machine's bytes; formats 1 and 2
    # are one JSON document, with no newline.
    end = snapshot.data.find(b"\n")
    head = memoryview(snapshot.data)[:end] if end >= 0 else snapshot.data
    try:
        position = msgspec.json.decode(head, type=_StatePosition)
    except UNREADABLE as exc:
        raise BackupError(name, f"the replicated state is unreadable: {exc}") from None
    recorded = (position.last_applied, position.last_applied_term, position.last_applied_hash)
    if recorded != claimed:
        raise BackupError(
            name, f"the replicated state records position {recorded}, the header says {claimed}"
        )
    return snapshot


def write_atomically(path: Path, parts: Iterable[bytes]) -> None:
    """Write ``parts`` to ``path`` as one file, mode 0600: a temp file in the same folder,
    fsync, rename over ``path``, fsync of the folder. A crash leaves the old file or the
    new one, never a torn backup under the final name."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, BACKUP_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


__all__ = [
    "BACKUP_FILE_MODE",
    "BACKUP_FORMAT",
    "BACKUP_VERSION",
    "Backup",
    "BackupHeader",
    "check_body",
    "decode_body",
    "parse_header",
    "read_backup",
    "write_atomically",
]
