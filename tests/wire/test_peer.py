"""Peer messages: every kind round-trips; payloads with or without ``kind`` decode."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings

from resonetics.errors import BadRequest
from resonetics.raft.entry import GENESIS, EntryType, make_entry
from resonetics.raft.messages import MESSAGE_TYPES, AppendEntries, Message, TimeoutNow, kind_of
from resonetics.raft.packing import unpacked
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
from tests.raft.harness import append_entries
from tests.wire.strategies import messages


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(msg=messages)
def test_every_peer_message_round_trips(msg: Message) -> None:
    data = encode_peer(msg, 99)
    env = decode_envelope(data)
    assert env.kind == kind_of(msg)
    assert plain_message(decode_peer(env)) == msg


@settings(deadline=None)  # a loaded CI box must not fail a test on time
@given(msg=messages)
def test_payload_without_repeated_kind_decodes(msg: Message) -> None:
    payload = msgspec.json.decode(msgspec.json.encode(msg))
    del payload["kind"]
    env = decode_envelope(encode_envelope(kind_of(msg), payload, 1))
    assert plain_message(decode_peer(env)) == msg


def test_payload_kind_contradicting_envelope_is_refused() -> None:
    payload = {"kind": "PreVote", "src": "a", "dst": "b", "term": 1}
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("TimeoutNow", payload, 1)))
    assert info.value.field == "payload.kind"


def plain_message(msg: Message) -> Message:
    """``msg`` with the client entries an AppendEntries arrives with decoded: they come
    packed, as the leader's bytes (``raft/packing.py``)."""
    if not isinstance(msg, AppendEntries):
        return msg
    return msgspec.structs.replace(msg, entries=[unpacked(e) for e in msg.entries])


def test_append_entries_arrive_with_client_data_packed_and_other_data_decoded() -> None:
    cmd = make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, {"op": "x", "args": {"b": 1}})
    cfg = make_entry(cmd.hash, 1, 2, EntryType.CONFIG, {"voters": ["n1", "n2"]})
    msg = append_entries(GENESIS, [cmd, cfg])
    got = decode_peer(decode_envelope(encode_peer(msg, 1)))
    assert isinstance(got, AppendEntries)
    assert type(got.entries[0].data) is msgspec.Raw and unpacked(got.entries[0]) == cmd
    assert got.entries[1] == cfg
    wrong = msgspec.json.decode(msgspec.json.encode(msg))
    wrong["kind"] = "PreVote"
    with pytest.raises(BadRequest) as info:
        decode_peer(decode_envelope(encode_envelope("AppendEntries", wrong, 1)))
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
