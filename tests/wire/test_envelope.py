"""The envelope: one JSON object per line, raw payload, version tolerance."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.errors import BadRequest
from resonetics.wire.envelope import (
    WIRE_VERSION,
    decode_envelope,
    encode_envelope,
    version_differs,
)
from tests.wire.strategies import json_values, texts


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"kind": "K", "payload": {}, "t": 1, "v": WIRE_VERSION}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_encoded_line_is_one_json_object_ending_in_newline() -> None:
    data = encode_envelope("K", {"a": 1}, 1234, id=7)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == {"kind": "K", "payload": {"a": 1}, "t": 1234, "v": 1, "id": 7}


def test_id_is_left_out_when_absent_but_version_never_is() -> None:
    assert json.loads(encode_envelope("K", {}, 5)) == {"kind": "K", "payload": {}, "t": 5, "v": 1}


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(
    kind=texts.filter(bool),
    payload=st.dictionaries(texts, json_values, max_size=4),
    t=st.integers(min_value=0, max_value=2**53),
    id=st.none() | st.integers() | texts,
)
def test_round_trip(kind: str, payload: dict[str, object], t: int, id: int | str | None) -> None:
    env = decode_envelope(encode_envelope(kind, payload, t, id=id))
    assert (env.kind, env.t, env.v, env.id) == (kind, t, WIRE_VERSION, id)
    assert msgspec.json.decode(env.payload) == payload


def test_other_version_of_same_major_is_accepted_and_flagged() -> None:
    env = decode_envelope(line(v=7))
    assert env.v == 7 and version_differs(env)
    assert not version_differs(decode_envelope(line()))


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"not json", "line", "not valid JSON"),
        (b"\xff\xfe{}", "line", "not valid UTF-8 (byte 0)"),
        (b'{"kind": "\xff", "payload": {}, "t": 1, "v": 1}', "line", "not valid UTF-8"),
        (b"[1, 2]", "line", "must be an object, got array"),
        (b'"hi"', "line", "must be an object, got str"),
        (b'{"kind":"K","payload":{},"t":1,"v":1} trailing', "line", "not valid JSON"),
        (line(kind=...), "kind", "missing required field"),
        (line(payload=...), "payload", "missing required field"),
        (line(t=...), "t", "missing required field"),
        (line(v=...), "v", "missing required field"),
        (line(kind=3), "kind", "must be a string, got int"),
        (line(kind=""), "kind", "must be a non-empty string"),
        (line(t="now"), "t", "must be an integer, got str"),
        (line(t=1.5), "t", "must be an integer, got float"),
        (line(v=True), "v", "must be an integer, got bool"),
        (line(v=0), "v", "must be a protocol version >= 1, got 0"),
        (line(payload=[1]), "payload", "must be an object, got array"),
        (line(payload="x"), "payload", "must be an object, got string"),
        (line(payload=None), "payload", "must be an object, got null"),
        (line(id=[1]), "id", "must be an integer, a string or null, got array"),
    ],
)
def test_malformed_lines_name_the_field(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_envelope(data)
    assert info.value.field == field
    assert reason in info.value.reason


def test_unknown_envelope_fields_are_ignored_for_forward_compatibility() -> None:
    env = decode_envelope(line(extra={"future": True}))
    assert env.kind == "K"
