"""A leader's outgoing snapshot is encoded on first use (raft/snapshot.OutgoingSnapshot):
a restart hands the recovered snapshot to the core, and most never stream it."""

from __future__ import annotations

import base64

import pytest

from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import (
    OutgoingSnapshot,
    SnapshotReceive,
    SnapshotSend,
    checksum_of,
    encode_payload,
)


def _snapshot() -> Snapshot:
    meta = SnapshotMeta(7, 2, "ab" * 32, Membership(voters=("n1", "n2", "n3")))
    return Snapshot(meta=meta, data=b"state " * 1000)


def test_nothing_is_encoded_until_the_payload_is_asked_for() -> None:
    out = OutgoingSnapshot.of(_snapshot())
    assert out._payload is None and out._checksum is None
    assert out.index == 7


def test_the_pieces_and_checksum_are_those_of_the_whole_payload() -> None:
    snap = _snapshot()
    out = OutgoingSnapshot.of(snap)
    whole = encode_payload(snap)
    assert out.checksum == checksum_of(whole)
    assert out.payload == whole and out.size == len(whole)
    assert out.meta == snap.meta
    for step in (1, 7, 100, 4096, len(whole)):
        cut = [out.piece(i, min(i + step, out.size)) for i in range(0, out.size, step)]
        assert b"".join(cut) == whole


def test_a_stream_never_builds_the_whole_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are cut from the membership line and the state as they are: joining them
    was a copy of the state on the leader's loop when a stream started."""
    from resonetics.raft import snapshot as snapshot_module

    snap = _snapshot()
    whole = encode_payload(snap)

    def never(_: Snapshot) -> bytes:
        raise AssertionError("the whole payload was built")

    monkeypatch.setattr(snapshot_module, "encode_payload", never)
    send = SnapshotSend(OutgoingSnapshot.of(snap), chunk_bytes=1000, window=100)
    chunks = send.next_chunks("n1", "n2", 3)
    assert b"".join(base64.b64decode(c.data) for c in chunks) == whole
    assert {c.checksum for c in chunks} == {checksum_of(whole)}


def test_an_installed_snapshot_is_restreamed_with_its_streams_checksum_only_if_same_bytes() -> None:
    snap = _snapshot()
    whole = encode_payload(snap)
    chunks = SnapshotSend(OutgoingSnapshot.of(snap), 100, 1000).next_chunks("n1", "n2", 3)
    recv = SnapshotReceive(chunks[0])
    done = [recv.accept(c) for c in chunks][-1]
    assert done.snapshot is not None
    assert recv.restream_checksum(done.snapshot) == checksum_of(whole)
    # A membership line this node would encode differently (here: a space in it): the
    # stream's checksum is not this node's payload's, so it is left to be computed.
    spaced = whole.replace(b'{"voters"', b'{ "voters"', 1)
    assert spaced != whole
    odd = SnapshotSend(OutgoingSnapshot(snap.meta, spaced), 100, 1000).next_chunks("n1", "n2", 3)
    recv = SnapshotReceive(odd[0])
    done = [recv.accept(c) for c in odd][-1]
    assert done.snapshot is not None and recv.restream_checksum(done.snapshot) is None
    assert OutgoingSnapshot.of(done.snapshot).checksum == checksum_of(whole)
