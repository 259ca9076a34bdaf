"""``snapshot.json``: the state machine's state at an index, with a checksum.

The file is format 2: one line of JSON (the snapshot's metadata, the membership,
``state_bytes``, the ``cluster`` whose node wrote it, and ``checksum``), a newline,
then the replicated state's bytes as they are (``machine/replicated.py``). ``checksum`` is the SHA-256 (hex) of the line
without it, the newline and the state: as in log lines it is spliced in as a
fixed-length suffix of the line, so it is checked against the bytes that were
written, not against a re-encoding.

Format 1 (before 2026-12-07 evening) was one JSON object holding the state in
base64, a third larger than its bytes; decoding it was a tenth of a restart at a
million keys. It still reads. Written atomically like ``meta.json``; unreadable or
failing its checksum it raises ``StorageCorruption`` (the log was compacted
against it, so dropping it would drop history).

``cluster`` binds the file to its cluster (since 2026-12-08; older files have
none): a node's start refuses a ``snapshot.json`` of another cluster than its
``meta.json`` names, which it would otherwise take for an install a crash cut
short and serve (``storage/node_storage.py``). It is not part of the snapshot
Raft ships (a leader's ``InstallSnapshot`` carries none: peers are already of one
cluster); each node writes its own.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import msgspec

from resonetics.decode_errors import UNREADABLE
from resonetics.errors import StorageCorruption
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.storage.fs import FileSystem, atomic_write

SNAPSHOT_FORMAT = 2
_SUM_HEAD = b',"checksum":"'
_SUFFIX_BYTES = len(_SUM_HEAD) + 64 + 2
#: Format 2's line ends here; the state follows. JSON as msgspec writes it never holds
#: a raw newline (strings escape theirs).
_LINE_END = b"\n"
#: The state is copied into the file's bytes this many at a time: between slices the
#: interpreter may hand the GIL to the loop (a copy of hundreds of MB is one long call;
#: 2 MB into fresh memory is about 2 ms here, 8 MB took 7).
_COPY_SLICE_BYTES = 2 * 1024 * 1024


class _Meta(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    format: int
    last_included_index: int
    last_included_term: int
    last_included_hash: str
    membership: Membership


class _HeadDoc(_Meta, forbid_unknown_fields=True, omit_defaults=True):
    """Format 2's line, without its checksum."""

    state_bytes: int
    # The cluster of the node that wrote the file; left out when it has none.
    cluster: str = ""
    # The taker's signature (security/snapshot_signing.py); left out when unsigned.
    signer: str = ""
    sig: str = ""


class _HeadFileDoc(_HeadDoc, forbid_unknown_fields=True, omit_defaults=True):
    """Format 2's line as written: with its checksum field."""

    checksum: str = ""


class _LegacyFileDoc(_Meta, forbid_unknown_fields=True, omit_defaults=True):
    """Format 1 as written: the state in base64 (msgspec decodes it in C: standard
    alphabet, padded, strict), the signature, the checksum."""

    state: bytes
    signer: str = ""
    sig: str = ""
    checksum: str = ""


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """A decoded ``snapshot.json``: the snapshot, and the cluster the file names
    ("" in a file written before files named one, or by a node without an id)."""

    snapshot: Snapshot
    cluster: str


def encode_snapshot(snapshot: Snapshot, cluster: str = "") -> bytes:
    """The file's bytes: the line, its newline, the state."""
    meta, state = snapshot.meta, snapshot.data
    body = msgspec.json.encode(
        _HeadDoc(
            format=SNAPSHOT_FORMAT,
            last_included_index=meta.last_included_index,
            last_included_term=meta.last_included_term,
            last_included_hash=meta.last_included_hash,
            membership=meta.membership,
            state_bytes=len(state),
            cluster=cluster,
            signer=meta.signer,
            sig=meta.sig,
        )
    )
    hasher = hashlib.sha256(body)  # releases the GIL over large input: one call each
    hasher.update(_LINE_END)
    hasher.update(state)
    out = io.BytesIO()
    for part in (body[:-1], _SUM_HEAD, hasher.hexdigest().encode("ascii"), b'"}', _LINE_END):
        out.write(part)
    view = memoryview(state)
    for start in range(0, len(state), _COPY_SLICE_BYTES):
        out.write(view[start : start + _COPY_SLICE_BYTES])
    return out.getvalue()


def decode_snapshot(data: bytes, path: str) -> Snapshot:
    """Check and decode; ``StorageCorruption`` on anything unexpected."""
    return decode_snapshot_file(data, path).snapshot


def decode_snapshot_file(data: bytes, path: str) -> SnapshotFile:
    """Check and decode, with the cluster the file names.

    The checksum is computed over views of the file's bytes and the line decoded in
    place: the one copy made is the state's own bytes.
    """
    if not data.startswith(b'{"format":1,'):
        return _decode(data, path)
    return SnapshotFile(_decode_legacy(data, path), "")


def _decode(data: bytes, path: str) -> SnapshotFile:
    end = data.find(_LINE_END)
    if end < 0:
        raise StorageCorruption(path, "snapshot has no line ending its header")
    if end <= _SUFFIX_BYTES or data[end - _SUFFIX_BYTES : end - 66] != _SUM_HEAD:
        raise StorageCorruption(path, "snapshot has no checksum")
    if data[end - 2 : end] != b'"}':
        raise StorageCorruption(path, "snapshot's header does not end with its checksum")
    view = memoryview(data)
    line = view[:end]
    digest = hashlib.sha256(line[:-_SUFFIX_BYTES])
    digest.update(b"}" + _LINE_END)
    digest.update(view[end + 1 :])
    if digest.hexdigest().encode("ascii") != data[end - 66 : end - 2]:
        raise StorageCorruption(path, "snapshot checksum mismatch")
    try:
        doc = msgspec.json.decode(line, type=_HeadFileDoc)
    except UNREADABLE as exc:
        raise StorageCorruption(path, f"unreadable snapshot header: {exc}") from None
    if doc.format != SNAPSHOT_FORMAT:
        raise StorageCorruption(path, f"unknown snapshot format {doc.format}")
    state = data[end + 1 :]
    if len(state) != doc.state_bytes:
        raise StorageCorruption(
            path, f"snapshot state is {len(state)} bytes, its header says {doc.state_bytes}"
        )
    return SnapshotFile(_snapshot(doc, doc.signer, doc.sig, state, path), doc.cluster)


def _decode_legacy(data: bytes, path: str) -> Snapshot:
    """Format 1: one JSON object, the checksum its last field."""
    end = len(data)
    while end and data[end - 1] == 0x0A:
        end -= 1
    view = memoryview(data)[:end]
    if end <= _SUFFIX_BYTES or view[-_SUFFIX_BYTES:-66] != _SUM_HEAD:
        raise StorageCorruption(path, "snapshot has no checksum")
    digest = hashlib.sha256(view[:-_SUFFIX_BYTES])
    digest.update(b"}")
    if digest.hexdigest().encode("ascii") != view[-66:-2]:
        raise StorageCorruption(path, "snapshot checksum mismatch")
    if data[end - 2 : end] != b'"}':
        raise StorageCorruption(path, "snapshot does not end with its checksum")
    try:
        doc = msgspec.json.decode(view, type=_LegacyFileDoc)
    except UNREADABLE as exc:
        raise StorageCorruption(path, f"unreadable snapshot: {exc}") from None
    return _snapshot(doc, doc.signer, doc.sig, doc.state, path)


def _snapshot(doc: _Meta, signer: str, sig: str, state: bytes, path: str) -> Snapshot:
    if doc.last_included_index < 0 or doc.last_included_term < 0:
        raise StorageCorruption(path, "negative index or term in snapshot")
    meta = SnapshotMeta(
        last_included_index=doc.last_included_index,
        last_included_term=doc.last_included_term,
        last_included_hash=doc.last_included_hash,
        membership=doc.membership,
        signer=signer,
        sig=sig,
    )
    return Snapshot(meta=meta, data=state)


def foreign_cluster(file: SnapshotFile, cluster: str | None) -> str | None:
    """Why ``file`` cannot be the snapshot of a folder of ``cluster`` (None: it can).

    A file or a folder that names no cluster (older, or anonymous) is not judged."""
    if not file.cluster or not cluster or file.cluster == cluster:
        return None
    return (
        f"snapshot of cluster {file.cluster}, but meta.json names cluster {cluster}: "
        "a snapshot.json copied from another cluster's node? Put back this node's own, "
        "or seed a new cluster from a backup (`resonetics snapshot restore`)"
    )


def read_snapshot(fs: FileSystem, path: str) -> SnapshotFile | None:
    if not fs.exists(path):
        return None
    return decode_snapshot_file(fs.read(path), path)


def write_snapshot(fs: FileSystem, path: str, snapshot: Snapshot, cluster: str = "") -> None:
    """Durable when it returns."""
    atomic_write(fs, path, encode_snapshot(snapshot, cluster))


__all__ = [
    "SNAPSHOT_FORMAT",
    "SnapshotFile",
    "decode_snapshot",
    "decode_snapshot_file",
    "encode_snapshot",
    "foreign_cluster",
    "read_snapshot",
    "write_snapshot",
]
