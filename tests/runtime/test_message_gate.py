"""The driver's gate: forged entries and bad snapshot streams never reach the core.

Drivers over in-memory disks (``tests/runtime/test_snapshots.Mini``), with and
without a trust registry on every node. Every refusal leaves the node up, its state
unchanged, and following the real leader.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

import msgspec
import pytest

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import Entry, EntryType
from resonetics.raft.membership import Membership
from resonetics.raft.messages import AppendEntries, InstallSnapshot
from resonetics.raft.ready import Role, Snapshot, SnapshotMeta
from resonetics.raft.snapshot import checksum_of, encode_payload
from resonetics.runtime import message_gate as gate
from resonetics.runtime.driver import NodeDriver
from resonetics.runtime.snapshots import SnapshotPolicy
from resonetics.security import entry_check as ec
from resonetics.security.entry_check import EntryGate
from resonetics.security.signing import SignatureCheck
from resonetics.security.snapshot_signing import sign_snapshot, snapshot_signer, verify_snapshot
from resonetics.storage.node_storage import FileNodeStorage
from tests.runtime.test_snapshots import POLICY, Mini, state
from tests.security.history_keys import EVIL, KEYS, REGISTRY, chain, signer_of


@dataclass
class SignedMini(Mini):
    """Every node signs entries and snapshots and checks its peers' with the registry."""

    registry: bool = True

    def boot(self, node: str) -> NodeDriver:
        cfg = RaftConfig(node_id=node, initial_voters=self.ids)
        storage = FileNodeStorage(self.fss[node], f"/data/{node}")
        d = NodeDriver(
            cfg,
            storage,
            self,
            random.Random(node),
            snapshot_policy=POLICY,
            signer=signer_of(node),
            message_filter=EntryGate(REGISTRY) if self.registry else None,
            snapshot_signer=snapshot_signer(KEYS[node], node),
        )
        self.drivers[node] = d
        self.down.discard(node)
        return d


def follower_of(mini: Mini) -> NodeDriver:
    leader = mini.leader()
    return next(
        mini.driver(i) for i in mini.ids if mini.driver(i) is not leader and i not in mini.down
    )


def forged_append(
    follower: NodeDriver, src: str, term: int, authors: list[str | None]
) -> AppendEntries:
    """An AppendEntries that links to the follower's last entry, entries of ``term``."""
    core = follower.core
    last = core.last_index
    prev_hash = core.hash_at(last)
    prev_term = core.term_at(last)
    assert prev_hash is not None and prev_term is not None
    prev = Entry(term=prev_term, index=last, type=EntryType.NOOP, hash=prev_hash)
    return AppendEntries(
        src=src,
        dst=follower.config.node_id,
        term=term,
        leader_id=src,
        prev_log_index=last,
        prev_log_term=prev_term,
        prev_log_hash=prev_hash,
        entries=chain([(term, a) for a in authors], prev=prev),
        leader_commit=last + len(authors),
    )


def assert_still_following(mini: Mini, follower: NodeDriver, leader_id: str) -> None:
    mini.write(5, tag="after")
    assert mini.leader().config.node_id == leader_id
    assert follower.core.leader_id == leader_id
    mini.tick()  # the followers hear the last commit index (a skipped round owes it them)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1


# --- entries ------------------------------------------------------------------------------
def test_signed_cluster_with_registries_commits_and_replicates() -> None:
    mini = SignedMini()
    mini.write(30)
    mini.tick()  # the followers hear the last commit index (a skipped round owes it them)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1
    assert all(mini.driver(i).stats.refused == {} for i in mini.ids)
    assert mini.driver("n1").machine.last_applied >= 30


def test_follower_with_registry_refuses_entry_not_signed_by_the_terms_leader() -> None:
    mini = SignedMini()
    mini.write(3)
    leader = mini.leader()
    follower = follower_of(mini)
    other = next(i for i in mini.ids if i not in (leader.config.node_id, follower.config.node_id))
    before = state(follower)
    msg = forged_append(follower, leader.config.node_id, leader.core.term, [other])
    follower.step(msg)
    follower.process_ready()
    assert follower.stats.refused == {ec.ENTRY_NOT_BY_TERMS_LEADER: 1}
    assert state(follower) == before
    assert_still_following(mini, follower, leader.config.node_id)


def test_follower_with_registry_refuses_unsigned_entries() -> None:
    mini = SignedMini()
    mini.write(3)
    leader = mini.leader()
    follower = follower_of(mini)
    last = follower.core.last_index
    follower.step(forged_append(follower, leader.config.node_id, leader.core.term, [None]))
    follower.process_ready()
    assert follower.stats.refused == {ec.UNSIGNED_ENTRY: 1}
    assert follower.core.last_index == last


def test_forged_entry_from_an_unregistered_author_is_dropped_and_the_node_keeps_following() -> None:
    mini = SignedMini()
    mini.write(3)
    leader = mini.leader()
    follower = follower_of(mini)
    term = follower.core.term
    for _ in range(3):  # refused every time, logged once (counted three times)
        follower.step(forged_append(follower, "evil", term + 1_000_000, ["evil"]))
        follower.process_ready()
    assert follower.stats.refused == {ec.UNREGISTERED_SENDER: 3}
    assert follower.core.term == term, "a refused message never reaches the term rules"
    assert_still_following(mini, follower, leader.config.node_id)


def test_without_a_registry_unsigned_entries_are_accepted_as_before() -> None:
    mini = Mini()
    mini.write(5)
    follower = follower_of(mini)
    leader = mini.leader()
    follower.step(forged_append(follower, leader.config.node_id, leader.core.term, [None]))
    follower.process_ready()
    assert follower.stats.refused == {}


# --- snapshot streams -------------------------------------------------------------------------
def stream(
    follower: NodeDriver,
    leader: NodeDriver,
    data: bytes,
    *,
    index: int | None = None,
    sign: str | None = None,
    chunk: int = 64,
) -> list[InstallSnapshot]:
    """A complete InstallSnapshot stream, correct checksum, for a state of our choosing."""
    index = index if index is not None else follower.core.last_index + 50
    meta = SnapshotMeta(index, leader.core.term, "cd" * 32, Membership(voters=mini_ids(follower)))
    snapshot = Snapshot(meta, data)
    if sign is not None:
        snapshot = sign_snapshot(KEYS[sign], sign, snapshot)
    payload = encode_payload(snapshot)
    out = []
    for offset in range(0, len(payload), chunk):
        out.append(
            InstallSnapshot(
                src=leader.config.node_id,
                dst=follower.config.node_id,
                term=leader.core.term,
                leader_id=leader.config.node_id,
                last_included_index=index,
                last_included_term=leader.core.term,
                last_included_hash=meta.last_included_hash,
                offset=offset,
                data=base64.b64encode(payload[offset : offset + chunk]).decode(),
                done=offset + chunk >= len(payload),
                checksum=checksum_of(payload),
                total_bytes=len(payload),
                signer=snapshot.meta.signer,
                sig=snapshot.meta.sig,
            )
        )
    return out


def mini_ids(d: NodeDriver) -> tuple[str, ...]:
    return tuple(sorted(d.core.membership.voters))


def feed(d: NodeDriver, msgs: list[InstallSnapshot]) -> None:
    """Deliver a stream; its last chunk once more if the follower holds the snapshot
    assembled, as the leader resends it while the follower reads the state
    (runtime/snapshot_reading.py)."""
    for m in msgs:
        d.step(m)
        d.process_ready()
    receiving = d.core._receiving
    if receiving is not None and receiving.assembled is not None:
        d.step(msgs[-1])
        d.process_ready()


def test_snapshot_with_garbage_state_is_refused_and_the_node_stays_up() -> None:
    mini = Mini()
    mini.write(5)
    leader, follower = mini.leader(), follower_of(mini)
    before = state(follower)
    feed(follower, stream(follower, leader, b"\x00 not a state machine state \xff" * 10))
    assert follower.stats.refused == {gate.SNAPSHOT_GARBAGE_STATE: 1}
    assert follower.core._receiving is None, "the spool is discarded"
    assert state(follower) == before and follower.snapshots.stats.installed == 0
    assert_still_following(mini, follower, leader.config.node_id)


def test_snapshot_whose_state_names_another_index_is_refused() -> None:
    mini = Mini()
    mini.write(5)
    leader, follower = mini.leader(), follower_of(mini)
    # A real state (the leader's), announced at an index it is not at.
    feed(follower, stream(follower, leader, leader.machine.snapshot()))
    assert follower.stats.refused == {gate.SNAPSHOT_STATE_MISMATCH: 1}
    assert follower.snapshots.stats.installed == 0


def test_snapshot_stream_over_the_size_cap_is_refused() -> None:
    mini = Mini()
    mini.write(5)
    leader, follower = mini.leader(), follower_of(mini)
    follower.snapshots.policy = SnapshotPolicy(bytes_max=100)
    msgs = stream(follower, leader, b"x" * 600)
    feed(follower, msgs)
    assert follower.stats.refused == {gate.SNAPSHOT_TOO_LARGE: len(msgs)}
    assert follower.core._receiving is None, "nothing was spooled"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"total_bytes": -1}, gate.SNAPSHOT_BAD_SIZE),
        ({"total_bytes": 10**15}, gate.SNAPSHOT_TOO_LARGE),
        ({"offset": -5}, gate.SNAPSHOT_BAD_OFFSET),
        ({"offset": 10**12}, gate.SNAPSHOT_BAD_OFFSET),
        ({"data": base64.b64encode(b"y" * 4000).decode()}, gate.SNAPSHOT_CHUNK_PAST_END),
        ({"checksum": "not hex"}, gate.SNAPSHOT_BAD_CHECKSUM_FIELD),
        ({"last_included_index": -3}, gate.SNAPSHOT_BAD_POSITION),
        ({"leader_id": "n9"}, gate.LEADER_ID_MISMATCH),
    ],
)
def test_snapshot_chunk_with_impossible_offsets_or_sizes_is_refused_cleanly(
    change: dict[str, object], reason: str
) -> None:
    mini = Mini()
    mini.write(3)
    leader, follower = mini.leader(), follower_of(mini)
    first = stream(follower, leader, b"z" * 300)[0]
    feed(follower, [msgspec.structs.replace(first, **change)])
    assert follower.stats.refused == {reason: 1}
    assert follower.core._receiving is None


def test_chunks_that_jump_or_belong_to_another_snapshot_spool_nothing() -> None:
    mini = Mini()
    mini.write(3)
    leader, follower = mini.leader(), follower_of(mini)
    msgs = stream(follower, leader, b"z" * 300)
    feed(follower, [msgs[2]])  # jumps past offset 0: answered with offset 0
    assert follower.core._receiving is None
    feed(follower, [msgs[0]])
    other = stream(follower, leader, b"w" * 300, index=follower.core.last_index + 70)
    feed(follower, [other[3]])  # another stream, not at offset 0: ignored
    receiving = follower.core._receiving
    assert receiving is not None and receiving.spool.size == 64
    assert follower.stats.refused == {}


def test_unsigned_snapshot_is_refused_with_a_registry() -> None:
    mini = SignedMini()
    mini.write(3)
    leader, follower = mini.leader(), follower_of(mini)
    msgs = stream(follower, leader, b"z" * 200)
    feed(follower, msgs)
    assert follower.stats.refused == {ec.UNSIGNED_SNAPSHOT: len(msgs)}
    assert follower.core._receiving is None


def test_snapshot_signed_by_an_unregistered_key_is_refused_with_a_registry() -> None:
    mini = SignedMini()
    mini.write(3)
    leader, follower = mini.leader(), follower_of(mini)
    first = stream(follower, leader, b"z" * 200, sign=leader.config.node_id)[0]
    # The leader's name on a signature made with a key the registry does not hold.
    other = Snapshot(SnapshotMeta(1, 1, "", Membership(voters=("n1",))), b"")
    forged = sign_snapshot(EVIL, leader.config.node_id, other)
    feed(follower, [msgspec.structs.replace(first, sig=forged.meta.sig)])
    assert follower.stats.refused == {ec.SNAPSHOT_BAD_SIGNATURE: 1}


def test_lagging_follower_installs_a_snapshot_signed_by_its_taker() -> None:
    mini = SignedMini()
    mini.write(5)
    lagging = next(i for i in mini.ids if mini.driver(i).core.role is not Role.LEADER)
    mini.down.add(lagging)
    mini.write(60)
    mini.down.discard(lagging)
    mini.tick(40)
    d = mini.driver(lagging)
    assert d.snapshots.stats.installed >= 1
    assert d.stats.refused == {}
    saved = d.storage.load().snapshot
    assert saved is not None and saved.meta.signer in KEYS
    assert verify_snapshot(REGISTRY, saved) is SignatureCheck.VALID
    mini.tick()  # the followers hear the last commit index (a skipped round owes it them)
    assert len({repr(state(mini.driver(i))) for i in mini.ids}) == 1
