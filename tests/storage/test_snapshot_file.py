"""snapshot.json: a checked line, then the state as it is (storage/snapshot_file.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import msgspec
import pytest

from resonetics.errors import StorageCorruption
from resonetics.raft.ready import Snapshot
from resonetics.storage.snapshot_file import decode_snapshot, encode_snapshot
from tests.older_formats import older_file, older_file_sealed
from tests.storage.chain import log_of, snapshot_at

PATH = "/d/snapshot.json"
_SUM_HEAD = b',"checksum":"'


def _signed(snap: Snapshot) -> Snapshot:
    return dataclasses.replace(snap, meta=dataclasses.replace(snap.meta, signer="n1", sig="c2ln"))


def _resealed(head: dict[str, object], state: bytes) -> bytes:
    """A format-2 file of ``head`` and ``state`` with a right checksum, as a writer
    that knows the format would make it."""
    body = msgspec.json.encode(head)
    digest = hashlib.sha256(body + b"\n" + state).hexdigest().encode("ascii")
    return body[:-1] + _SUM_HEAD + digest + b'"}\n' + state


def _head(data: bytes) -> dict[str, object]:
    head = json.loads(data.split(b"\n", 1)[0])
    del head["checksum"]
    return head


def test_the_file_is_a_checked_json_line_then_the_state_as_it_is() -> None:
    """No base64: the state's bytes follow the line, whatever they hold (newlines, bytes
    that are not UTF-8)."""
    state = b"\n\x00\xff" + bytes(range(256)) * 10 + b"\n"
    snap = snapshot_at(log_of(5)[2], data=state)
    data = encode_snapshot(snap)
    line, rest = data.split(b"\n", 1)
    assert rest == state
    head = json.loads(line)
    assert (head["format"], head["state_bytes"], head["last_included_index"]) == (2, len(state), 3)
    body = line[: line.rindex(_SUM_HEAD)] + b"}"
    assert head["checksum"] == hashlib.sha256(body + b"\n" + state).hexdigest()
    assert decode_snapshot(data, PATH) == snap


def test_a_signed_snapshot_round_trips_and_an_unsigned_one_writes_no_signature() -> None:
    signed = _signed(snapshot_at(log_of(5)[2], data=b"s"))
    assert decode_snapshot(encode_snapshot(signed), PATH) == signed
    unsigned = snapshot_at(log_of(5)[2], data=b"s")
    assert b'"sig"' not in encode_snapshot(unsigned).split(b"\n", 1)[0]


def test_a_format_1_file_still_reads_with_or_without_trailing_newlines() -> None:
    """What releases before format 2 wrote: the node's own snapshot.json after an
    upgrade, and the bodies of backups taken by them."""
    snap = _signed(snapshot_at(log_of(5)[2], data=bytes(range(256)) * 10))
    data = older_file(snap)
    for tail in (b"", b"\n", b"\n\n"):
        assert decode_snapshot(data.rstrip(b"\n") + tail, PATH) == snap


def test_a_format_1_state_that_is_not_base64_is_corruption_even_with_a_valid_checksum() -> None:
    snap = snapshot_at(log_of(5)[2], data=b"ab")  # "YWI=" padded
    body = older_file(snap).rstrip(b"\n")
    body = body[: body.rindex(_SUM_HEAD)] + b"}"
    for forged in (body.replace(b'"YWI="', b'"*WI="'), body.replace(b'"YWI="', b'"YWI=YWI="')):
        assert forged != body
        with pytest.raises(StorageCorruption, match="unreadable snapshot") as info:
            decode_snapshot(older_file_sealed(forged), PATH)
        assert info.value.path == PATH


def test_a_cut_or_lengthened_snapshot_is_corruption() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"state bytes"))
    for cut in (1, 2, 11, 12, 40, len(data) - 10):
        with pytest.raises(StorageCorruption):
            decode_snapshot(data[:-cut], PATH)
    for more in (b"\n", b"x"):
        with pytest.raises(StorageCorruption, match="checksum mismatch"):
            decode_snapshot(data + more, PATH)
    with pytest.raises(StorageCorruption, match="no line ending its header"):
        decode_snapshot(data.split(b"\n", 1)[0], PATH)


def test_a_state_of_another_length_than_its_header_says_is_corruption() -> None:
    """Even with a checksum that holds (a writer that knows the format)."""
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"state bytes"))
    head = _head(data)
    for state in (b"state byte", b"state bytes!"):
        with pytest.raises(StorageCorruption, match=f"{len(state)} bytes, its header says 11"):
            decode_snapshot(_resealed(head, state), PATH)


def test_an_unknown_field_or_format_in_the_header_is_corruption() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"s"))
    with pytest.raises(StorageCorruption, match=r"unreadable snapshot header.*extra"):
        decode_snapshot(_resealed({**_head(data), "extra": 1}, b"s"), PATH)
    with pytest.raises(StorageCorruption, match="unknown snapshot format 9"):
        decode_snapshot(_resealed({**_head(data), "format": 9}, b"s"), PATH)
    with pytest.raises(StorageCorruption, match="unreadable snapshot"):
        decode_snapshot(older_file(snapshot_at(log_of(5)[2], data=b"s"), extra=1), PATH)


def test_a_negative_index_in_the_header_is_corruption() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"s"))
    with pytest.raises(StorageCorruption, match="negative index or term"):
        decode_snapshot(_resealed({**_head(data), "last_included_index": -1}, b"s"), PATH)


def test_a_changed_byte_anywhere_fails_the_checksum() -> None:
    data = encode_snapshot(snapshot_at(log_of(5)[2], data=b"state bytes" * 20))
    line_end = data.index(b"\n")
    for at in (5, line_end - 70, line_end + 1, len(data) - 1):
        forged = bytearray(data)
        forged[at] ^= 0x01
        with pytest.raises(StorageCorruption):
            decode_snapshot(bytes(forged), PATH)


def _sealed_body(body: bytes, state: bytes) -> bytes:
    """A format-2 file of a header body given as bytes, with a right checksum."""
    digest = hashlib.sha256(body + b"\n" + state).hexdigest().encode("ascii")
    return body[:-1] + _SUM_HEAD + digest + b'"}\n' + state


@pytest.mark.parametrize(
    ("membership", "reason"),
    [
        (b"[" * 300_000 + b"]" * 300_000, "Expected `object`, got `array`"),
        (b'{"voters":' + b"[" * 300_000 + b"]" * 300_000 + b"}", "maximum recursion|Expected"),
        (b'"' + b"x" * 10_000_000 + b'"', "Expected `object`, got `str`"),
    ],
)
def test_a_header_nested_deep_or_huge_is_corruption_not_a_crash(
    membership: bytes, reason: str
) -> None:
    """Its checksum holds (a writer that knows the format): the header's types refuse a
    300,000-deep or a 10 MB membership, and the file is named."""
    body = (
        b'{"format":2,"last_included_index":1,"last_included_term":1,'
        b'"last_included_hash":"x","membership":' + membership + b',"state_bytes":1}'
    )
    with pytest.raises(StorageCorruption, match=f"unreadable snapshot header: ({reason})") as info:
        decode_snapshot(_sealed_body(body, b"s"), PATH)
    assert info.value.path == PATH
