"""``meta.json``: the node's identity, term, vote and progress hints (DESIGN §4).

Written whole and atomically (temp file, fsync, replace, fsync of the folder),
and durable before any vote or message that depends on it leaves the node.

Format 2 holds, besides term, vote and the hints, the node id and the cluster
id the folder belongs to (``storage/identity.py``) and a ``checksum``: the
sha256 of the other fields' canonical encoding. The checksum catches a torn or
hand-edited file (a vote erased, a term lowered) as corruption; it is no
signature, and anyone who recomputes it passes, so the load also refuses a term
below the log's last term (``FileNodeStorage.load``). A format-1 file (no
identity, written by an older version) is refused with a message saying so.

Reading is strict: a ``meta.json`` that cannot be parsed or fails validation
raises ``StorageCorruption``. The rejected alternative, starting again at term
0 with no vote, let the prototype vote twice in one term after a bad write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec

from resonetics.decode_errors import UNREADABLE
from resonetics.errors import StorageCorruption
from resonetics.raft.ready import HardState
from resonetics.raft.types import Index
from resonetics.storage.fs import FileSystem, atomic_write

META_FORMAT = 2
_CANONICAL = msgspec.json.Encoder(order="sorted")


class _MetaDoc(msgspec.Struct, forbid_unknown_fields=True):
    format: int
    cluster_id: str | None
    node_id: str | None
    current_term: int
    voted_for: str | None
    commit_index: int
    last_applied: int
    checksum: str


@dataclass(frozen=True, slots=True)
class MetaRecord:
    hard_state: HardState
    last_applied: Index
    #: Who the folder belongs to; None in identity-less folders (simulator, unit tests).
    node_id: str | None = None
    cluster_id: str | None = None


def _checksum(fields: list[Any]) -> str:
    return hashlib.sha256(_CANONICAL.encode(fields)).hexdigest()


def _fields(
    cluster_id: str | None,
    node_id: str | None,
    term: int,
    vote: str | None,
    commit: int,
    applied: int,
) -> list[Any]:
    return [META_FORMAT, cluster_id, node_id, term, vote, commit, applied]


def encode_meta(record: MetaRecord) -> bytes:
    hs = record.hard_state
    fields = _fields(
        record.cluster_id, record.node_id, hs.term, hs.vote, hs.commit, record.last_applied
    )
    doc = _MetaDoc(
        format=META_FORMAT,
        cluster_id=record.cluster_id,
        node_id=record.node_id,
        current_term=hs.term,
        voted_for=hs.vote,
        commit_index=hs.commit,
        last_applied=record.last_applied,
        checksum=_checksum(fields),
    )
    return msgspec.json.encode(doc) + b"\n"


def decode_meta(data: bytes, path: str) -> MetaRecord:
    """Parse and validate; ``StorageCorruption`` on anything unexpected."""
    try:
        raw = msgspec.json.decode(data)
    except UNREADABLE as exc:
        raise StorageCorruption(path, f"unreadable meta.json: {exc}") from None
    fmt = raw.get("format") if isinstance(raw, dict) else None
    if fmt == 1:
        raise StorageCorruption(
            path,
            "meta.json format 1 was made by an older version and holds no node or cluster "
            "identity; this version needs format 2 (start the node on a fresh data dir)",
        )
    if fmt != META_FORMAT:
        raise StorageCorruption(path, f"unknown meta.json format {fmt!r}")
    try:
        doc = msgspec.convert(raw, type=_MetaDoc)
    except UNREADABLE as exc:
        raise StorageCorruption(path, f"unreadable meta.json: {exc}") from None
    if min(doc.current_term, doc.commit_index, doc.last_applied) < 0:
        raise StorageCorruption(path, "negative term or index in meta.json")
    fields = _fields(
        doc.cluster_id,
        doc.node_id,
        doc.current_term,
        doc.voted_for,
        doc.commit_index,
        doc.last_applied,
    )
    if doc.checksum != _checksum(fields):
        raise StorageCorruption(
            path, "meta.json checksum mismatch (edited by hand or damaged): term and vote untrusted"
        )
    hs = HardState(term=doc.current_term, vote=doc.voted_for, commit=doc.commit_index)
    return MetaRecord(
        hard_state=hs,
        last_applied=doc.last_applied,
        node_id=doc.node_id,
        cluster_id=doc.cluster_id,
    )


def read_meta(fs: FileSystem, path: str) -> MetaRecord | None:
    """The record, or None when the file does not exist."""
    if not fs.exists(path):
        return None
    return decode_meta(fs.read(path), path)


def write_meta(fs: FileSystem, path: str, record: MetaRecord) -> None:
    """Durable when it returns."""
    atomic_write(fs, path, encode_meta(record))


__all__ = ["META_FORMAT", "MetaRecord", "decode_meta", "encode_meta", "read_meta", "write_meta"]
