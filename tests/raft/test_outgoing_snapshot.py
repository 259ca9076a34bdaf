"""A leader's outgoing snapshot is encoded on first use (raft/snapshot.OutgoingSnapshot):
a restart hands the recovered snapshot to the core, and most never stream it."""

from __future__ import annotations

from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.raft.snapshot import OutgoingSnapshot, checksum_of, encode_payload


def _snapshot() -> Snapshot:
    meta = SnapshotMeta(7, 2, "ab" * 32, Membership(voters=("n1", "n2", "n3")))
    return Snapshot(meta=meta, data=b"state " * 1000)


def test_nothing_is_encoded_until_the_payload_is_asked_for() -> None:
    out = OutgoingSnapshot.of(_snapshot())
    assert out._payload is None and out._checksum is None
    assert out.index == 7


def test_the_payload_and_checksum_are_those_encoded_up_front() -> None:
    snap = _snapshot()
    out = OutgoingSnapshot.of(snap)
    assert out.checksum == checksum_of(encode_payload(snap))
    assert out.payload == encode_payload(snap)
    assert out.meta == snap.meta
    assert out.payload is out.payload  # made once, then shared by every stream
