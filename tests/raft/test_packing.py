"""Applied client entries are packed as canonical JSON (raft/packing.py): same entry to
everyone who checks it, nothing for the garbage collector to walk."""

from __future__ import annotations

import gc
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from resonetics.raft.entry import (
    GENESIS,
    Entry,
    EntryType,
    canonical_body,
    entry_links,
    make_entry,
)
from resonetics.raft.log import RaftLog, entries_size_bytes, entry_size_bytes
from resonetics.raft.messages import AppendEntries
from resonetics.raft.packing import is_packed, packed, recanonicalized, unpacked
from resonetics.raft.replication import batch_links
from resonetics.wire.envelope import decode_envelope
from resonetics.wire.peer import decode_peer, encode_peer
from tests.raft.harness import Network, append_entries

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def _command(i: int, value: Any = "v") -> dict[str, Any]:
    return {"client_id": "c", "request_id": i, "op": "kv_set", "args": {"v": value, "k": f"k{i}"}}


@given(data=JSON_VALUES, batch=st.booleans())
def test_a_packed_entry_hashes_links_and_encodes_like_the_entry_it_replaces(
    data: Any, batch: bool
) -> None:
    type_ = EntryType.CLIENT_BATCH if batch else EntryType.CLIENT_CMD
    entry = make_entry(GENESIS.hash, 1, 1, type_, [data] if batch else data)
    p = packed(entry)
    assert is_packed(p) and not is_packed(entry)
    assert canonical_body(p.term, p.index, p.type, p.data) == canonical_body(
        entry.term, entry.index, entry.type, entry.data
    )
    assert entry_links(GENESIS.hash, p)
    assert entry_size_bytes(p) == entry_size_bytes(entry)
    assert entries_size_bytes([p, entry]) == 2 * entry_size_bytes(entry)
    assert unpacked(p) == entry
    # On the wire a packed entry is plain JSON: the receiver keeps the same bytes, packed.
    msg = append_entries(GENESIS, [p], leader_commit=1)
    received = decode_peer(decode_envelope(encode_peer(msg, 0).rstrip(b"\n")))
    assert isinstance(received, AppendEntries)
    assert received.entries == [p] and [unpacked(e) for e in received.entries] == [entry]
    assert batch_links(0, 0, GENESIS.hash, received.entries)


def test_only_client_entries_are_packed() -> None:
    for type_, data in (
        (EntryType.CONFIG, {"voters": ["n1"]}),
        (EntryType.NOOP, None),
    ):
        entry = make_entry(GENESIS.hash, 1, 1, type_, data)
        assert packed(entry) is entry


def test_recanonicalized_returns_the_same_sequence_when_nothing_is_packed() -> None:
    entries = [make_entry(GENESIS.hash, 1, 1, EntryType.CLIENT_CMD, _command(1))]
    assert recanonicalized(entries) is entries
    unsorted = msgspec.Raw(msgspec.json.encode({"op": "x", "args": {"b": 1, "a": 2}}))
    entry = msgspec.structs.replace(entries[0], data=unsorted)
    (again,) = recanonicalized([entry])
    assert bytes(again.data) == b'{"args":{"a":2,"b":1},"op":"x"}'


def test_packed_log_entries_are_not_tracked_by_the_garbage_collector() -> None:
    """The reason for packing: 1,000 applied batch entries of 20 writes, decoded from
    the wire, leave (almost) nothing for a full collection to walk; unpacked, each
    command dict is tracked."""
    log, prev = RaftLog(GENESIS), GENESIS
    wire = []
    for i in range(1, 1001):
        entry = make_entry(
            prev.hash, 1, i, EntryType.CLIENT_BATCH, [_command(i * 20 + j) for j in range(20)]
        )
        wire.append(msgspec.json.encode(entry))
        prev = entry
    decoded = [msgspec.json.decode(line, type=Entry) for line in wire]
    assert sum(gc.is_tracked(c) for e in decoded for c in e.data) == 20_000
    log.append(decoded)
    del decoded
    log.pack_through(log.last_index)
    held = log.entries_from(1)
    assert all(is_packed(e) for e in held)
    assert not any(gc.is_tracked(e) or gc.is_tracked(e.data) for e in held)


def test_the_log_packs_only_up_to_the_index_it_is_given() -> None:
    log, prev = RaftLog(GENESIS), GENESIS
    for i in range(1, 6):
        prev = make_entry(prev.hash, 1, i, EntryType.CLIENT_CMD, _command(i))
        log.append([prev])
    log.pack_through(3)
    assert [is_packed(e) for e in log.entries_from(1)] == [True, True, True, False, False]
    log.compact(2)
    log.pack_through(4)
    assert [is_packed(e) for e in log.entries_from(3)] == [True, True, False]


def test_applied_client_entries_are_packed_in_the_core_and_unpacked_for_its_readers() -> None:
    net = Network()
    leader = net.elect("n1")
    for i in range(3):
        net.propose("n1", _command(i, value={"nested": [i]}))
    net.deliver()
    held = leader._log.entries_from(1)
    assert [is_packed(e) for e in held] == [False, True, True, True]  # the NOOP stays
    # The core's readers get decoded entries, as they always have.
    assert leader.entry_at(2).data == _command(0, value={"nested": [0]})
    assert [e.data for e in leader.entries_from(2)] == [
        _command(i, value={"nested": [i]}) for i in range(3)
    ]
    assert leader.positions_from(1) == [(e.index, e.term, e.hash) for e in leader.entries_from(1)]


def test_a_lagging_follower_logs_and_applies_the_packed_entries_it_is_sent() -> None:
    """In-process, a leader's packed entries reach a follower as ``Raw``: the follower
    checks the chain over those bytes, logs them as they came and applies the same
    commands as the leader."""
    net = Network()
    net.elect("n1")
    net.down.add("n3")
    commands = [_command(i, value={"nested": [i, None]}) for i in range(4)]
    for command in commands:
        net.propose("n1", command)
    net.deliver()
    net.down.discard("n3")
    net.tick_and_deliver(5)
    packed_sent = [
        e
        for m in net.sent
        if isinstance(m, AppendEntries) and m.dst == "n3"
        for e in m.entries
        if is_packed(e)
    ]
    assert packed_sent, "the leader sent the lagging follower no packed entry"
    assert net.applied_data("n3") == net.applied_data("n1")
    assert [d for d in net.applied_data("n3") if d is not None] == commands
    assert [e for e in net.disks["n3"].entries if is_packed(e)] == packed_sent
    assert [e.hash for e in net.disks["n3"].entries] == [e.hash for e in net.disks["n1"].entries]


def test_a_follower_takes_commands_a_leader_sent_with_unsorted_keys() -> None:
    """A leader from before proposals were canonical sends a command's keys in its
    dict's order. The follower hashes packed data as it came, so those bytes fail the
    chain check; their canonical encoding links, and the follower logs that."""
    net = Network()
    net.elect("n1")
    leader, follower = net.nodes["n1"], net.nodes["n2"]
    command = {"op": "kv_set", "client_id": "c", "args": {"v": 1, "k": "x"}}
    last = leader._log.entry_at(leader._log.last_index)
    entry = make_entry(last.hash, leader.term, last.index + 1, EntryType.CLIENT_CMD, command)
    old_style = msgspec.structs.replace(entry, data=msgspec.Raw(msgspec.json.encode(command)))
    follower.step(append_entries(last, term=leader.term, entries=[old_style]))
    held = follower._log.entry_at(entry.index)
    assert held.hash == entry.hash
    assert bytes(held.data) == msgspec.json.Encoder(order="sorted").encode(command)
    forged = msgspec.structs.replace(
        old_style, index=entry.index + 1, data=msgspec.Raw(b'{"op":"kv_delete"}')
    )
    before = follower._log.last_index
    follower.step(append_entries(entry, term=leader.term, entries=[forged]))
    assert follower._log.last_index == before  # refused: its bytes link no way
