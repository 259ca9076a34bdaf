"""``meta.json``: the node's term, vote and progress hints (DESIGN §4).

Written whole and atomically (temp file, fsync, replace, fsync of the folder),
and durable before any vote or message that depends on it leaves the node.

Reading is strict: a ``meta.json`` that cannot be parsed or fails validation
raises ``StorageCorruption``. The rejected alternative, starting again at term
0 with no vote, let the prototype vote twice in one term after a bad write.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from resonetics.errors import StorageCorruption
from resonetics.raft.ready import HardState
from resonetics.raft.types import Index
from resonetics.storage.fs import FileSystem, atomic_write

META_FORMAT = 1


class _MetaDoc(msgspec.Struct, forbid_unknown_fields=True):
    format: int
    current_term: int
    voted_for: str | None
    commit_index: int
    last_applied: int


@dataclass(frozen=True, slots=True)
class MetaRecord:
    hard_state: HardState
    last_applied: Index


def encode_meta(record: MetaRecord) -> bytes:
    hs = record.hard_state
    doc = _MetaDoc(
        format=META_FORMAT,
        current_term=hs.term,
        voted_for=hs.vote,
        commit_index=hs.commit,
        last_applied=record.last_applied,
    )
    return msgspec.json.encode(doc) + b"\n"


def decode_meta(data: bytes, path: str) -> MetaRecord:
    """Parse and validate; ``StorageCorruption`` on anything unexpected."""
    try:
        doc = msgspec.json.decode(data, type=_MetaDoc)
    except msgspec.MsgspecError as exc:
        raise StorageCorruption(path, f"unreadable meta.json: {exc}") from None
    if doc.format != META_FORMAT:
        raise StorageCorruption(path, f"unknown meta.json format {doc.format}")
    if min(doc.current_term, doc.commit_index, doc.last_applied) < 0:
        raise StorageCorruption(path, "negative term or index in meta.json")
    hs = HardState(term=doc.current_term, vote=doc.voted_for, commit=doc.commit_index)
    return MetaRecord(hard_state=hs, last_applied=doc.last_applied)


def read_meta(fs: FileSystem, path: str) -> MetaRecord | None:
    """The record, or None when the file does not exist."""
    if not fs.exists(path):
        return None
    return decode_meta(fs.read(path), path)


def write_meta(fs: FileSystem, path: str, record: MetaRecord) -> None:
    """Durable when it returns."""
    atomic_write(fs, path, encode_meta(record))


__all__ = ["META_FORMAT", "MetaRecord", "decode_meta", "encode_meta", "read_meta", "write_meta"]
