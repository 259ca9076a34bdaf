"""The two ends of an InstallSnapshot stream on their own (raft/snapshot.py)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from resonetics.raft.membership import Membership
from resonetics.raft.messages import InstallSnapshot
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import (
    OutgoingSnapshot,
    SnapshotReceive,
    SnapshotSend,
    checksum_of,
    decode_payload,
    encode_payload,
)

META = SnapshotMeta(40, 3, "ab" * 32, Membership(voters=("n1", "n2"), learners=("n3",)))


def snapshot(size: int) -> Snapshot:
    return Snapshot(META, bytes(random.Random(size).randrange(256) for _ in range(size)))


def test_payload_round_trips_membership_and_state() -> None:
    snap = snapshot(100)
    payload = encode_payload(snap)
    back = decode_payload(payload, 40, 3, "ab" * 32)
    assert back == snap


def test_malformed_payload_is_refused() -> None:
    assert decode_payload(b"no newline", 1, 1, "h") is None
    assert decode_payload(b"{not json}\nstate", 1, 1, "h") is None


def test_sender_never_has_more_than_the_window_in_flight() -> None:
    send = SnapshotSend(OutgoingSnapshot.of(snapshot(1000)), chunk_bytes=100, window=3)
    first = send.next_chunks("n1", "n2", 5)
    assert [m.offset for m in first] == [0, 100, 200]
    assert send.next_chunks("n1", "n2", 5) == []
    send.on_response(100)  # chunk 0 answered: one slot free
    assert [m.offset for m in send.next_chunks("n1", "n2", 5)] == [300]


def test_duplicate_answer_resends_from_the_follower_offset() -> None:
    send = SnapshotSend(OutgoingSnapshot.of(snapshot(1000)), chunk_bytes=100, window=3)
    send.next_chunks("n1", "n2", 5)
    send.on_response(100)
    send.next_chunks("n1", "n2", 5)  # 300
    send.on_response(100)  # chunk 100 was lost: the answer to 200 repeats 100
    assert [m.offset for m in send.next_chunks("n1", "n2", 5)] == [100, 200, 300]


def test_silence_rewinds_to_the_last_acknowledged_offset() -> None:
    send = SnapshotSend(OutgoingSnapshot.of(snapshot(1000)), chunk_bytes=100, window=2)
    send.next_chunks("n1", "n2", 5)
    send.on_response(100)
    send.next_chunks("n1", "n2", 5)
    assert not send.tick_stalled(3) and not send.tick_stalled(3)
    assert send.tick_stalled(3)
    assert [m.offset for m in send.next_chunks("n1", "n2", 5)] == [100, 200]


def test_receiver_only_takes_the_expected_offset() -> None:
    out = OutgoingSnapshot.of(snapshot(250))
    chunks = SnapshotSend(out, chunk_bytes=100, window=10).next_chunks("n1", "n2", 5)
    recv = SnapshotReceive(chunks[0])
    assert recv.accept(chunks[1]).next_offset == 0  # ahead of what it has
    assert recv.accept(chunks[0]).next_offset == 100
    assert recv.accept(chunks[0]).next_offset == 100  # a duplicate changes nothing
    assert recv.accept(chunks[1]).next_offset == 200
    for c in chunks[2:-1]:
        assert recv.accept(c).snapshot is None
    done = recv.accept(chunks[-1])
    assert done.ok and done.snapshot is not None
    assert done.snapshot.data == snapshot(250).data


def test_a_stream_whose_bytes_fail_the_checksum_is_refused() -> None:
    out = OutgoingSnapshot.of(snapshot(50))
    forged = OutgoingSnapshot(out.meta, out.payload[:-1] + b"X", out.checksum)
    (chunk,) = SnapshotSend(forged, chunk_bytes=1000, window=1).next_chunks("n1", "n2", 5)
    result = SnapshotReceive(chunk).accept(chunk)
    assert not result.ok and result.snapshot is None and result.next_offset == 0
    assert checksum_of(forged.payload) != out.checksum


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(1, 1500),
    chunk=st.integers(16, 300),
    window=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_stream_over_a_lossy_reordering_link_delivers_the_exact_snapshot(
    size: int, chunk: int, window: int, seed: int
) -> None:
    """Drops, duplicates and reordering in both directions: the follower still ends
    with exactly the leader's snapshot, and never accepts a wrong byte."""
    rng = random.Random(seed)
    snap = snapshot(size)
    send = SnapshotSend(OutgoingSnapshot.of(snap), chunk_bytes=chunk, window=window)
    recv: SnapshotReceive | None = None
    wire: list[InstallSnapshot] = []
    answers: list[int] = []
    for _ in range(5_000):
        wire += send.next_chunks("n1", "n2", 1)
        if send.tick_stalled(4):
            continue
        rng.shuffle(wire)
        if wire and rng.random() < 0.8:
            msg = wire.pop()
            if rng.random() < 0.1:
                wire.append(msg)  # duplicated
            if rng.random() < 0.15:
                continue  # lost
            if recv is None:
                if msg.offset != 0:
                    answers.append(0)
                    continue
                recv = SnapshotReceive(msg)
            result = recv.accept(msg)
            assert result.ok
            if result.snapshot is not None:
                assert result.snapshot == snap
                return
            answers.append(result.next_offset)
        rng.shuffle(answers)
        if answers and rng.random() < 0.8:
            offset = answers.pop()
            if rng.random() > 0.15:
                send.on_response(offset)
    raise AssertionError("the stream never completed")


def _stream(payload: bytes, chunk_bytes: int) -> list[InstallSnapshot]:
    """Every chunk of a stream of ``payload`` (any bytes), as a leader sends them."""
    send = SnapshotSend(OutgoingSnapshot(META, payload), chunk_bytes, window=1 << 30)
    return send.next_chunks("n1", "n2", 5)


@given(chunk_bytes=st.integers(min_value=1, max_value=120), size=st.integers(0, 300))
@settings(max_examples=60, deadline=None)
def test_the_membership_line_may_span_chunks_and_the_state_is_read_past_it(
    chunk_bytes: int, size: int
) -> None:
    """The receiver keeps the first line as it streams in and reads the state from the
    spool past it, rather than reading the whole payload back and splitting it."""
    snap = snapshot(size)
    payload = encode_payload(snap)
    chunks = _stream(payload, chunk_bytes)
    recv = SnapshotReceive(chunks[0])
    results = [recv.accept(c) for c in chunks]
    assert all(r.ok for r in results)
    assert results[-1].snapshot == snap and results[-1].next_offset == len(payload)


def test_a_payload_without_a_membership_line_or_with_one_past_its_bound_is_refused() -> None:
    no_line = b"x" * 500
    chunks = _stream(no_line, 100)
    recv = SnapshotReceive(chunks[0])
    results = [recv.accept(c) for c in chunks]
    assert not results[-1].ok and results[-1].snapshot is None
    huge = b"[" + b" " * (1 << 21) + b"]\nstate"
    chunks = _stream(huge, 1 << 18)
    recv = SnapshotReceive(chunks[0])
    oks = [recv.accept(c).ok for c in chunks]
    # Refused at the chunk that takes the line past 1 MiB, not after the whole stream.
    assert oks[:4] == [True] * 4 and oks[4] is False
