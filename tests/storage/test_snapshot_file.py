"""snapshot.json: decoded in place, checked whole (storage/snapshot_file.py)."""

from __future__ import annotations

import base64
import hashlib

import msgspec
import pytest

from resonetics.errors import StorageCorruption
from resonetics.storage.snapshot_file import decode_snapshot, encode_snapshot
from tests.storage.chain import log_of, snapshot_at

PATH = "/d/snapshot.json"


def _resealed(body: bytes) -> bytes:
    """``body`` (the object without its checksum) with a correct checksum spliced in,
    as a writer that knows the format would produce it."""
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return body[:-1] + b',"checksum":"' + digest + b'"}\n'


def _body(data: bytes) -> bytes:
    head = data.rstrip(b"\n")
    return head[: head.rindex(b',"checksum":"')] + b"}"


def test_a_snapshot_round_trips_with_or_without_trailing_newlines() -> None:
    snap = snapshot_at(log_of(5)[2], data=bytes(range(256)) * 10)
    data = encode_snapshot(snap)
    for tail in (b"", b"\n", b"\n\n"):
        assert decode_snapshot(data.rstrip(b"\n") + tail, PATH) == snap


def test_a_state_that_is_not_base64_is_corruption_even_with_a_valid_checksum() -> None:
    """The base64 check moved from a regular expression to a2b_base64's strict mode;
    a character outside the alphabet is still refused, naming the file."""
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"state bytes!"))
    body = _body(data)
    start = body.index(b'"state":"') + len(b'"state":"')
    forged = body[:start] + b"*" + body[start + 1 :]
    with pytest.raises(StorageCorruption, match="unreadable snapshot") as info:
        decode_snapshot(_resealed(forged), PATH)
    assert info.value.path == PATH


def test_a_state_with_data_after_its_padding_is_corruption() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"ab"))  # "YWI=" padded
    body = _body(data)
    forged = body.replace(b'"YWI="', b'"YWI=YWI="')
    assert forged != body
    with pytest.raises(StorageCorruption, match="unreadable snapshot"):
        decode_snapshot(_resealed(forged), PATH)


def test_a_cut_snapshot_is_corruption() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2]))
    for cut in (2, 3, 40, len(data) - 10):  # cut=1 drops only the newline
        with pytest.raises(StorageCorruption):
            decode_snapshot(data[:-cut], PATH)


def test_an_unknown_field_in_the_snapshot_is_corruption() -> None:
    body = _body(encode_snapshot(snapshot_at(log_of(5)[2])))
    forged = body[:-1] + b',"extra":1}'
    with pytest.raises(StorageCorruption, match="unreadable snapshot"):
        decode_snapshot(_resealed(forged), PATH)


def test_the_file_is_byte_for_byte_the_format_written_before() -> None:
    """The state's base64 is now msgspec's: the same bytes as ``base64.b64encode``, so old
    files read and new files are what old releases read."""
    snap = snapshot_at(log_of(5)[2], data=bytes(range(256)) * 3 + b"x")
    meta = snap.meta
    doc = {
        "format": 1,
        "last_included_index": meta.last_included_index,
        "last_included_term": meta.last_included_term,
        "last_included_hash": meta.last_included_hash,
        "membership": msgspec.to_builtins(meta.membership),
        "state": base64.b64encode(snap.data).decode("ascii"),
    }
    assert _body(encode_snapshot(snap)) == msgspec.json.encode(doc)
