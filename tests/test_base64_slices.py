"""Base64 in slices is msgspec's base64, byte for byte, wherever it is spliced in."""

from __future__ import annotations

import base64
import binascii
import random

import msgspec
import pytest

from resonetics import base64_slices
from resonetics.base64_slices import b64_decode_slices, b64_slices, split_at_empty_field
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.storage.snapshot_file import decode_snapshot, encode_snapshot


@pytest.fixture
def tiny_slices(monkeypatch: pytest.MonkeyPatch) -> int:
    """Slices of 6 input bytes, so that small data spans many of them."""
    monkeypatch.setattr(base64_slices, "SLICE_INPUT_BYTES", 6)
    return 6


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 6, 7, 11, 12, 13, 100])
def test_slices_join_to_the_whole_base64(tiny_slices: int, size: int) -> None:
    data = random.Random(size).randbytes(size)
    slices = list(b64_slices(data))
    assert b"".join(slices) == base64.b64encode(data)
    assert len(slices) == -(-size // tiny_slices)  # every slice at most 6 input bytes


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 6, 7, 11, 12, 13, 100])
def test_decoded_slices_join_to_the_data(tiny_slices: int, size: int) -> None:
    data = random.Random(size).randbytes(size)
    slices = list(b64_decode_slices(base64.b64encode(data)))
    assert b"".join(slices) == data
    assert len(slices) == -(-size // tiny_slices)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (b"QUJD" + b"RA=", "multiple of 4"),  # truncated
        (b"QUJDRA==QUJD", "padding inside"),  # padding at a slice's end, text after it
        (b"QQ==QUJD", "after padding"),  # padding inside a slice
        (b"QU*D", "Only base64 data"),  # a character outside the alphabet
        (b"QUJ\\", "Only base64 data"),  # a JSON escape left in
    ],
)
def test_decoding_refuses_anything_but_padded_standard_base64(
    tiny_slices: int, text: bytes, what: str
) -> None:
    with pytest.raises(binascii.Error, match=what):
        b"".join(b64_decode_slices(text))


def test_the_field_is_found_first_or_last_as_asked() -> None:
    doc = b'{"a":{"state":""},"state":"","z":"\\"state\\":\\"\\""}'
    head, tail = split_at_empty_field(doc, "state", last=True)
    assert head + b"XY" + tail == b'{"a":{"state":""},"state":"XY","z":"\\"state\\":\\"\\""}'
    head, tail = split_at_empty_field(doc, "state")
    assert head.endswith(b'{"a":{"state":"')
    with pytest.raises(ValueError, match="no empty field"):
        split_at_empty_field(doc, "missing")


def _whole(snapshot: Snapshot) -> bytes:
    """``encode_snapshot`` as it was: one msgspec call, then the checksum spliced in."""
    import hashlib

    from resonetics.storage import snapshot_file

    meta = snapshot.meta
    doc = snapshot_file._SnapshotDoc(
        format=snapshot_file.SNAPSHOT_FORMAT,
        last_included_index=meta.last_included_index,
        last_included_term=meta.last_included_term,
        last_included_hash=meta.last_included_hash,
        membership=meta.membership,
        state=snapshot.data,
        signer=meta.signer,
        sig=meta.sig,
    )
    body = msgspec.json.encode(doc)
    return body[:-1] + b',"checksum":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'


@pytest.mark.parametrize("size", [0, 1, 7, 50, 301])
def test_a_snapshot_file_is_written_as_one_msgspec_call_wrote_it(
    tiny_slices: int, size: int
) -> None:
    """Including a membership whose addresses hold a node named like the field, with an
    empty address: the marker occurs inside it too, before the field."""
    membership = Membership(voters=("n1", "state"), addresses={"state": "", "n1": "h:1"})
    meta = SnapshotMeta(9, 2, "ab" * 32, membership, signer="n1", sig="c2ln")
    snapshot = Snapshot(meta=meta, data=random.Random(size).randbytes(size))
    written = encode_snapshot(snapshot)
    assert written == _whole(snapshot)
    assert decode_snapshot(written, "snapshot.json") == snapshot
