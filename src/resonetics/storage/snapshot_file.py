"""``snapshot.json``: the state machine's state at an index, with a checksum.

The file is one JSON object: the snapshot's metadata, the membership, the
state as base64 and ``checksum``, the SHA-256 (hex) of the object's bytes
without it. As in log lines, the checksum is spliced in as a fixed-length
suffix, so it is checked against the bytes that were written, not against a
re-encoding. Written atomically like ``meta.json``; unreadable or failing its
checksum it raises ``StorageCorruption`` (the log was compacted against it, so
dropping it would drop history).
"""

from __future__ import annotations

import hashlib
import io

import msgspec

from resonetics.base64_slices import b64_slices, split_at_empty_field
from resonetics.decode_errors import UNREADABLE
from resonetics.errors import StorageCorruption
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.storage.fs import FileSystem, atomic_write

SNAPSHOT_FORMAT = 1
_SUM_HEAD = b',"checksum":"'
_SUFFIX_BYTES = len(_SUM_HEAD) + 64 + 2


class _SnapshotDoc(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    format: int
    last_included_index: int
    last_included_term: int
    last_included_hash: str
    membership: Membership
    #: base64 in the file; msgspec encodes and decodes it (standard alphabet, padded,
    #: strict: the bytes ``base64.b64encode`` wrote before, checked in C).
    state: bytes
    # The taker's signature (security/snapshot_signing.py); left out when unsigned, so
    # an unsigned snapshot is written byte for byte as before signatures existed.
    signer: str = ""
    sig: str = ""


def encode_snapshot(snapshot: Snapshot) -> bytes:
    meta = snapshot.meta
    doc = _SnapshotDoc(
        format=SNAPSHOT_FORMAT,
        last_included_index=meta.last_included_index,
        last_included_term=meta.last_included_term,
        last_included_hash=meta.last_included_hash,
        membership=meta.membership,
        state=b"",
        signer=meta.signer,
        sig=meta.sig,
    )
    # The state's base64 a slice at a time (``resonetics/base64_slices.py``): this runs
    # on the disk thread, and one call over hundreds of MB would hold the GIL, and so
    # the loop and its heartbeats, for a second. The bytes are msgspec's, as before.
    # Only ``membership`` (before ``state``) nests objects: the field is the last marker.
    # The slices go into one buffer handed over without a copy at the end: a join of
    # them all would be one call holding the GIL over the whole file.
    head, tail = split_at_empty_field(msgspec.json.encode(doc), "state", last=True)
    hasher = hashlib.sha256()
    out = io.BytesIO()
    for part in (head, *b64_slices(snapshot.data), tail[:-1]):
        hasher.update(part)
        out.write(part)
    hasher.update(tail[-1:])
    for part in (_SUM_HEAD, hasher.hexdigest().encode("ascii"), b'"}\n'):
        out.write(part)
    return out.getvalue()


class _SnapshotFileDoc(_SnapshotDoc, forbid_unknown_fields=True, omit_defaults=True):
    """The file's object as written: the document and its checksum field. Decoding
    it whole, rather than the body rebuilt without the checksum, saves a copy of
    the state (hundreds of MB at a million keys)."""

    checksum: str = ""


def decode_snapshot(data: bytes, path: str) -> Snapshot:
    """Check and decode; ``StorageCorruption`` on anything unexpected.

    No copy of the file is made: the checksum is computed over a view of its bytes
    and the JSON decoded in place; msgspec decodes the base64 state (in C) rather
    than a regular expression and ``b64decode`` going over it twice.
    """
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
        doc = msgspec.json.decode(view, type=_SnapshotFileDoc)
    except UNREADABLE as exc:
        raise StorageCorruption(path, f"unreadable snapshot: {exc}") from None
    if doc.format != SNAPSHOT_FORMAT:
        raise StorageCorruption(path, f"unknown snapshot format {doc.format}")
    if doc.last_included_index < 0 or doc.last_included_term < 0:
        raise StorageCorruption(path, "negative index or term in snapshot")
    meta = SnapshotMeta(
        last_included_index=doc.last_included_index,
        last_included_term=doc.last_included_term,
        last_included_hash=doc.last_included_hash,
        membership=doc.membership,
        signer=doc.signer,
        sig=doc.sig,
    )
    return Snapshot(meta=meta, data=doc.state)


def read_snapshot(fs: FileSystem, path: str) -> Snapshot | None:
    if not fs.exists(path):
        return None
    return decode_snapshot(fs.read(path), path)


def write_snapshot(fs: FileSystem, path: str, snapshot: Snapshot) -> None:
    """Durable when it returns."""
    atomic_write(fs, path, encode_snapshot(snapshot))


__all__ = [
    "SNAPSHOT_FORMAT",
    "decode_snapshot",
    "encode_snapshot",
    "read_snapshot",
    "write_snapshot",
]
