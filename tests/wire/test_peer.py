"""Peer messages: every kind round-trips; payloads with or without ``kind`` decode."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings

from resonetics.errors import BadRequest
from resonetics.raft.messages import MESSAGE_TYPES, Message, TimeoutNow, kind_of
from resonetics.wire.envelope import decode_envelope, encode_envelope
from resonetics.wire.peer import (
    HELLO_KIND,
    PEER_KINDS,
    Hello,
    decode_hello,
    decode_peer,
    encode_hello,
    encode_peer,
)
from tests.wire.strategies import messages


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(msg=messages)
def test_every_peer_message_round_trips(msg: Message) -> None:
    data = encode_peer(msg, 99)
    env = decode_envelope(data)
    assert env.kind == kind_of(msg)
    assert decode_peer(env) == msg


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(msg=messages)
def test_payload_without_repeated_kind_decodes(msg: Message) -> None:
    payload = msgspec.json.decode(msgspec.json.encode(msg))
    del payload["kind"]
    env = decode_envelope(encode_envelope(kind_of(msg), payload, 1))
    assert decode_peer(env) == msg


def test_payload_kind_contradicting_envelope_is_refused() -> None:
    payload = {"kind": "PreVote", "src": "a", "dst": "b", "term": 1}
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("TimeoutNow", payload, 1)))
    assert info.value.field == "payload.kind"


def test_every_raft_kind_is_a_peer_kind() -> None:
    assert set(MESSAGE_TYPES) | {HELLO_KIND} == PEER_KINDS


def test_unknown_peer_kind_is_refused() -> None:
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("Gossip", {}, 1)))
    assert info.value.field == "kind" and "Gossip" in info.value.reason


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"src": "a", "term": 1}, "payload.dst", "missing required field"),
        ({"src": "a", "dst": "b", "term": "1"}, "payload.term", "must be an integer, got str"),
    ],
)
def test_bad_peer_fields_name_the_field(
    payload: dict[str, object], field: str, reason: str
) -> None:
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("TimeoutNow", payload, 1)))
    assert (info.value.field, info.value.reason) == (field, reason)


def test_nested_entry_errors_point_into_the_list() -> None:
    payload = {
        "src": "a",
        "dst": "b",
        "term": 1,
        "leader_id": "a",
        "prev_log_index": 0,
        "prev_log_term": 0,
        "prev_log_hash": "",
        "leader_commit": 0,
        "entries": [{"term": 1}],
    }
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("AppendEntries", payload, 1)))
    assert info.value.field == "payload.entries[0].index"


def test_hello_round_trips_and_is_required_first() -> None:
    hello = Hello(node_id="n1", cluster="c")
    assert decode_hello(decode_envelope(encode_hello(hello, 1))) == hello
    line = encode_peer(TimeoutNow(src="a", dst="b", term=1), 1)
    with pytest.raises(BadRequest, match="must open with 'Hello'"):
        decode_hello(decode_envelope(line))


def test_hello_without_cluster_means_an_unnamed_cluster() -> None:
    data = encode_envelope(HELLO_KIND, {"node_id": "n1"}, 1)
    assert decode_hello(decode_envelope(data)) == Hello(node_id="n1", cluster="")


def test_hello_needs_a_node_id() -> None:
    data = encode_envelope(HELLO_KIND, {"node_id": "", "cluster": "c"}, 1)
    with pytest.raises(BadRequest) as info:
        decode_hello(decode_envelope(data))
    assert info.value.field == "payload.node_id"
    assert json.loads(encode_hello(Hello(node_id="n", cluster="c"), 1))["kind"] == HELLO_KIND
