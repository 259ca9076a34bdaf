"""Log compaction and InstallSnapshot in the pure core (Raft §7, dissertation §5.4)."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from resonetics import errors
from resonetics.raft.entry import Entry
from resonetics.raft.messages import InstallSnapshot, InstallSnapshotResp, Message
from resonetics.raft.node import RaftNode
from resonetics.raft.packing import unpacked
from resonetics.raft.progress import ProgressState
from resonetics.raft.ready import Ready, Snapshot, SnapshotMeta
from resonetics.raft.snapshot import MemorySpool, SnapshotSend
from resonetics.raft.types import Index, NodeId
from tests.raft.harness import Network, append_entries


@dataclass
class Machine:
    """The test state machine: the data of every applied entry, in order."""

    data: list[Any] = field(default_factory=list)
    installed: list[Snapshot] = field(default_factory=list)


class SnapNetwork(Network):
    """``Network`` whose runtime also installs snapshots (``Ready.snapshot``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.machines: dict[NodeId, Machine] = {i: Machine() for i in self.ids}

    def process(self, node: NodeId) -> Ready | None:
        n = self.nodes[node]
        if not n.has_ready():
            return None
        rd = n.ready()
        m = self.machines[node]
        if rd.snapshot is not None:
            m.data = json.loads(rd.snapshot.data)
            m.installed.append(rd.snapshot)
        for msg in rd.messages:
            self.sent.append(msg)
            if (msg.src, msg.dst) not in self.cut and msg.dst not in self.down:
                self.queue.append(msg)
        m.data.extend(e.data for e in map(unpacked, rd.committed_entries) if e.data is not None)
        n.advance(rd)
        return rd

    def take_snapshot(self, node: NodeId, *, trailing: int = 0, chunk_bytes: int = 64) -> None:
        """What the driver does: snapshot at applied, then compact (keeping ``trailing``)."""
        n = self.nodes[node]
        index = n.applied
        meta = SnapshotMeta(
            last_included_index=index,
            last_included_term=n.term_at(index) or 0,
            last_included_hash=n.hash_at(index) or "",
            membership=n.membership_at(index),
        )
        data = json.dumps(self.machines[node].data).encode()
        n.set_snapshot(Snapshot(meta, data), chunk_bytes=chunk_bytes, chunks_inflight_max=2)
        n.compact(max(n.anchor.index, index - trailing))


def cluster_with_lagging_n3(writes: int = 30) -> tuple[SnapNetwork, RaftNode]:
    net = SnapNetwork()
    leader = net.elect("n1")
    net.down.add("n3")
    for k in range(writes):
        net.propose("n1", {"k": k, "pad": "x" * 20})
        net.deliver()
    return net, leader


def chunks(net: SnapNetwork) -> list[InstallSnapshot]:
    return [m for m in net.sent if isinstance(m, InstallSnapshot)]


def bring_back(net: SnapNetwork, node: NodeId, ticks: int = 30) -> None:
    net.down.discard(node)
    net.tick_and_deliver(ticks)


def assert_same_state(net: SnapNetwork) -> None:
    leader = net.nodes["n1"]
    for i in net.ids:
        assert net.nodes[i].applied == leader.applied
        assert net.machines[i].data == net.machines["n1"].data


def test_leader_sends_snapshot_when_follower_needs_compacted_entries() -> None:
    net, leader = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    bring_back(net, "n3")
    assert chunks(net), "no InstallSnapshot was sent"
    assert len(net.machines["n3"].installed) == 1
    installed = net.machines["n3"].installed[0]
    assert installed.meta.last_included_index == leader.anchor.index
    assert installed.meta.membership == leader.membership
    assert net.nodes["n3"].anchor.index == installed.meta.last_included_index
    assert_same_state(net)
    pr = leader.progress_of("n3")
    assert pr is not None and pr.state is ProgressState.REPLICATE


class RecordingSpool(MemorySpool):
    """Remembers that it was used and whether it was cleaned up."""

    made: ClassVar[list[RecordingSpool]] = []

    def __init__(self) -> None:
        super().__init__()
        self.appended = 0
        self.discarded = False
        RecordingSpool.made.append(self)

    def append(self, data: bytes) -> None:
        self.appended += 1
        super().append(data)

    def discard(self) -> None:
        self.discarded = True
        super().discard()


def test_received_chunks_are_kept_in_the_runtimes_spool_and_discarded_after_install() -> None:
    RecordingSpool.made.clear()
    net, _ = cluster_with_lagging_n3()
    net.nodes["n3"] = RaftNode(net.config("n3"), random.Random(3), snapshot_spool=RecordingSpool)
    net.take_snapshot("n1")
    bring_back(net, "n3")
    assert len(net.machines["n3"].installed) == 1
    assert RecordingSpool.made and sum(s.appended for s in RecordingSpool.made) >= 2
    assert all(s.discarded and s.size == 0 for s in RecordingSpool.made)
    assert_same_state(net)


def test_follower_within_trailing_entries_catches_up_by_log() -> None:
    net, _ = cluster_with_lagging_n3(writes=10)
    net.take_snapshot("n1", trailing=100)
    bring_back(net, "n3")
    assert not chunks(net)
    assert_same_state(net)


def test_entries_after_the_snapshot_replicate_by_log_after_install() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    for k in range(5):
        net.propose("n1", {"late": k})
        net.deliver()
    bring_back(net, "n3")
    assert len(net.machines["n3"].installed) == 1
    assert net.machines["n3"].data[-5:] == [{"late": k} for k in range(5)]
    assert_same_state(net)


def test_chunks_in_flight_are_bounded_by_the_window() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    net.down.discard("n3")
    net.drop = lambda m: isinstance(m, InstallSnapshotResp)  # the leader hears nothing back
    net.tick_and_deliver(3)
    offsets = {m.offset for m in chunks(net)}
    assert len(offsets) == 2  # chunks_inflight_max=2


def test_lost_snapshot_chunk_is_resent_from_follower_offset() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    lost: list[int] = []

    def drop_second_chunk(m: Message) -> bool:
        if isinstance(m, InstallSnapshot) and m.offset == 64 and not lost:
            lost.append(m.offset)
            return True
        return False

    net.drop = drop_second_chunk
    bring_back(net, "n3")
    assert lost == [64]
    resent = [m.offset for m in chunks(net)]
    assert resent.count(64) >= 2
    assert resent.count(0) == 1, "the stream resumed, it did not restart"
    answers = [m.next_offset for m in net.sent if isinstance(m, InstallSnapshotResp)]
    assert 64 in answers
    assert_same_state(net)


def test_stalled_snapshot_stream_is_resumed_after_silence() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    net.down.discard("n3")
    net.cut.add(("n1", "n3"))  # every chunk is lost for a while
    net.tick_and_deliver(20)
    net.heal()
    net.tick_and_deliver(30)
    assert len(net.machines["n3"].installed) == 1
    assert_same_state(net)


def test_snapshot_checksum_mismatch_is_rejected() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    net.down.discard("n3")
    n1, n3 = net.nodes["n1"], net.nodes["n3"]
    # A complete one-chunk stream whose bytes do not match its checksum.
    bad = InstallSnapshot(
        src="n1",
        dst="n3",
        term=n1.term,
        leader_id="n1",
        last_included_index=n1.anchor.index,
        last_included_term=n1.anchor.term,
        last_included_hash=n1.anchor.hash,
        offset=0,
        data="aGVsbG8=",  # b"hello"
        done=True,
        checksum="0" * 64,
        total_bytes=5,
    )
    n3.step(bad)
    rd = n3.ready()
    assert rd.snapshot is None
    seen = [m for m in rd.messages if isinstance(m, InstallSnapshotResp)]
    assert len(seen) == 1 and not seen[0].success and seen[0].next_offset == 0
    assert n3.anchor.index == 0
    n3.advance(rd)
    net.queue.clear()
    net.tick_and_deliver(30)
    assert len(net.machines["n3"].installed) == 1  # the real stream still succeeds
    assert_same_state(net)


def test_chunk_of_unknown_stream_not_at_offset_zero_asks_for_the_start() -> None:
    net, _ = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    n3 = net.nodes["n3"]
    n3.step(
        InstallSnapshot(
            src="n1",
            dst="n3",
            term=n3.term,
            leader_id="n1",
            last_included_index=25,
            last_included_term=1,
            last_included_hash="h",
            offset=64,
            data="",
            done=False,
            checksum="0" * 64,
            total_bytes=500,
        )
    )
    resp = [m for m in n3.ready().messages if isinstance(m, InstallSnapshotResp)]
    assert resp and resp[0].next_offset == 0 and not resp[0].success


def _network_with_20_entries() -> SnapNetwork:
    """n1 leads and has committed 20 entries, replicated to every node."""
    net = SnapNetwork()
    net.elect("n1")
    for k in range(20):
        net.propose("n1", {"k": k})
        net.deliver()
    return net


def test_install_keeps_matching_log_suffix() -> None:
    net = _network_with_20_entries()
    n1, n3 = net.nodes["n1"], net.nodes["n3"]
    # n3 holds the whole log; hand it a snapshot at 10 (as a leader with a stale view would).
    snap_index = 10
    meta = SnapshotMeta(snap_index, n1.term_at(10) or 0, n1.hash_at(10) or "", n1.membership)
    suffix_before = n3.entries_from(snap_index + 1)
    commit_before = n3.commit_index
    _deliver_whole_snapshot(n3, Snapshot(meta, json.dumps([]).encode()))
    assert commit_before >= snap_index
    # Already committed there: acknowledged without installing.
    assert n3.anchor.index == 0

    fresh = _fresh_follower(net)
    # Give the fresh follower the first 15 entries by log, then a snapshot at 10.
    _append_raw(fresh, n1, upto=15)
    _deliver_whole_snapshot(fresh, Snapshot(meta, json.dumps(["s"]).encode()))
    assert fresh.anchor.index == snap_index
    assert fresh.last_index == 15
    assert [e.hash for e in fresh.entries_from(11)] == [e.hash for e in suffix_before[:5]]
    assert fresh.commit_index >= snap_index and fresh.applied == snap_index


def test_install_discards_a_log_that_does_not_hold_the_snapshot_entry() -> None:
    net = _network_with_20_entries()
    n1 = net.nodes["n1"]
    meta = SnapshotMeta(18, n1.term_at(18) or 0, n1.hash_at(18) or "", n1.membership)
    fresh = _fresh_follower(net)
    _append_raw(fresh, n1, upto=5)
    rd = _deliver_whole_snapshot(fresh, Snapshot(meta, b"[]"))
    assert rd.snapshot is not None and rd.snapshot.meta == meta
    assert fresh.anchor.index == 18 and fresh.last_index == 18
    assert fresh.anchor.hash == n1.hash_at(18)


def test_restarted_leader_streams_the_snapshot_it_was_given() -> None:
    net, leader = cluster_with_lagging_n3()
    net.take_snapshot("n1")
    snap_meta = SnapshotMeta(
        leader.anchor.index,
        leader.anchor.term,
        leader.anchor.hash,
        leader.membership,
    )
    bring_back(net, "n3")
    assert net.machines["n3"].installed[0].meta == snap_meta


# --- helpers ----------------------------------------------------------------------------
def _fresh_follower(net: SnapNetwork) -> RaftNode:
    from resonetics.raft.ready import HardState

    node = RaftNode(
        net.config("n3"), random.Random(5), hard_state=HardState(term=net.nodes["n1"].term)
    )
    node.ready()
    return node


def _append_raw(node: RaftNode, leader: RaftNode, upto: Index) -> None:
    from resonetics.raft.messages import AppendEntries

    entries: list[Entry] = [leader.entry_at(i) for i in range(1, upto + 1)]
    node.step(
        AppendEntries(
            src=leader.node_id,
            dst=node.node_id,
            term=leader.term,
            leader_id=leader.node_id,
            prev_log_index=0,
            prev_log_term=0,
            prev_log_hash=leader.hash_at(0) or "",
            entries=entries,
            leader_commit=0,
        )
    )
    node.advance(node.ready())


def _deliver_whole_snapshot(node: RaftNode, snap: Snapshot) -> Ready:
    from resonetics.raft.snapshot import OutgoingSnapshot, SnapshotSend

    send = SnapshotSend(OutgoingSnapshot.of(snap), chunk_bytes=16, window=1000)
    for msg in send.next_chunks("n1", node.node_id, node.term):
        node.step(msg)
    rd = node.ready()
    node.advance(rd)
    return rd


@pytest.mark.parametrize("seed", range(6))
def test_random_drops_duplicates_and_compaction_converge(seed: int) -> None:
    """Snapshots every few entries, a follower down for a while, lossy and duplicating
    links: every node ends with the same state, and the core's invariants hold."""
    rng = random.Random(seed)
    net = SnapNetwork(seed=seed)
    net.elect("n1")

    def lossy(m: Message) -> bool:
        if rng.random() < 0.05:
            net.queue.append(m)  # delivered twice
        return rng.random() < 0.15

    net.drop = lossy
    for k in range(60):
        if k == 10:
            net.down.add("n3")
        if k == 45:
            net.down.discard("n3")
        leader = next(iter(net.leaders()), None)
        if leader is not None:
            with contextlib.suppress(errors.ProposalDropped, errors.NotLeader):
                net.propose(leader.node_id, {"k": k})
            if k % 7 == 0:
                net.take_snapshot(leader.node_id, trailing=rng.randrange(3))
        net.tick_and_deliver(1)
    net.drop = lambda m: False
    net.tick_and_deliver(60)
    (leader,) = net.leaders()
    assert net.machines["n3"].installed, "n3 should have needed a snapshot"
    for i in net.ids:
        assert net.nodes[i].applied == leader.applied
        assert net.machines[i].data == net.machines[leader.node_id].data


def test_install_waits_for_handed_out_committed_entries_to_be_applied() -> None:
    from resonetics.raft.messages import AppendEntries
    from resonetics.raft.snapshot import OutgoingSnapshot, SnapshotSend

    net = _network_with_20_entries()
    n1 = net.nodes["n1"]
    fresh = _fresh_follower(net)
    fresh.step(
        AppendEntries(
            src="n1",
            dst="n3",
            term=n1.term,
            leader_id="n1",
            prev_log_index=0,
            prev_log_term=0,
            prev_log_hash=n1.hash_at(0) or "",
            entries=[n1.entry_at(i) for i in range(1, 6)],
            leader_commit=5,
        )
    )
    in_flight = fresh.ready()  # committed entries 1..5 handed out, not yet applied
    assert len(in_flight.committed_entries) == 5
    meta = SnapshotMeta(18, n1.term_at(18) or 0, n1.hash_at(18) or "", n1.membership)
    send = SnapshotSend(OutgoingSnapshot.of(Snapshot(meta, b"[]")), chunk_bytes=16, window=1000)
    chunks = send.next_chunks("n1", "n3", n1.term)
    for msg in chunks:
        fresh.step(msg)
    rd = fresh.ready()
    assert rd.snapshot is None
    answers = [m for m in rd.messages if isinstance(m, InstallSnapshotResp)]
    assert answers[-1].next_offset == chunks[-1].offset
    fresh.advance(in_flight)
    fresh.advance(rd)
    fresh.step(chunks[-1])
    rd = fresh.ready()
    assert rd.snapshot is not None and fresh.applied == 18
    fresh.advance(rd)


def _reading_follower(
    prepared: Callable[[Snapshot], bool],
) -> tuple[SnapNetwork, RaftNode, SnapshotMeta, SnapshotSend, list[InstallSnapshot]]:
    """A fresh n3 whose runtime answers ``snapshot_prepared`` with ``prepared``, and the
    whole stream of a snapshot at index 18 of n1's log, not yet delivered."""
    from resonetics.raft.ready import HardState
    from resonetics.raft.snapshot import OutgoingSnapshot

    net = _network_with_20_entries()
    n1 = net.nodes["n1"]
    fresh = RaftNode(
        net.config("n3"),
        random.Random(5),
        hard_state=HardState(term=n1.term),
        snapshot_prepared=prepared,
    )
    fresh.ready()
    meta = SnapshotMeta(18, n1.term_at(18) or 0, n1.hash_at(18) or "", n1.membership)
    send = SnapshotSend(OutgoingSnapshot.of(Snapshot(meta, b"[]")), chunk_bytes=16, window=1000)
    return net, fresh, meta, send, send.next_chunks("n1", "n3", n1.term)


def test_an_assembled_snapshot_waits_until_the_runtime_has_read_its_state() -> None:
    """``snapshot_prepared``: until the runtime says it has read the state, the follower
    keeps the verified snapshot and asks for its last chunk again; a late copy of an
    earlier chunk is never answered as if the whole snapshot were held."""
    asked: list[Snapshot] = []
    read = False

    def prepared(snap: Snapshot) -> bool:
        asked.append(snap)
        return read

    _, fresh, meta, send, sent = _reading_follower(prepared)
    for msg in sent:
        fresh.step(msg)
    fresh.step(sent[0])  # a late duplicate of the first chunk
    rd = fresh.ready()
    fresh.advance(rd)
    assert rd.snapshot is None and fresh.applied == 0
    answers = [m for m in rd.messages if isinstance(m, InstallSnapshotResp)]
    assert [a.next_offset for a in answers[-2:]] == [sent[-1].offset, sent[-1].offset]
    assert all(a.next_offset < send.total for a in answers)
    assert len(asked) == 1 and asked[0].meta == meta

    fresh.step(sent[-1])  # resent while the state is still being read: still waiting
    rd = fresh.ready()
    fresh.advance(rd)
    assert rd.snapshot is None and len(asked) == 2 and asked[1] is asked[0]

    read = True
    fresh.step(sent[-1])
    rd = fresh.ready()
    assert rd.snapshot is asked[0] and fresh.applied == 18
    (answer,) = [m for m in rd.messages if isinstance(m, InstallSnapshotResp)]
    assert answer.success and answer.next_offset == send.total
    fresh.advance(rd)


def test_a_snapshot_held_for_reading_is_dropped_once_the_log_has_caught_up() -> None:
    """The follower caught up by the log meanwhile (a new leader still had the entries):
    the assembled snapshot is no longer needed, and its spool is let go."""
    net, fresh, _, send, sent = _reading_follower(lambda snap: False)
    n1 = net.nodes["n1"]
    for msg in sent:
        fresh.step(msg)
    fresh.advance(fresh.ready())
    assert fresh._receiving is not None and fresh._receiving.assembled is not None
    entries = [n1.entry_at(i) for i in range(1, 21)]
    fresh.step(append_entries(n1.anchor, entries, dst="n3", term=n1.term, leader_commit=20))
    fresh.advance(fresh.ready())
    fresh.step(sent[-1])
    rd = fresh.ready()
    assert rd.snapshot is None and fresh._receiving is None
    (answer,) = [m for m in rd.messages if isinstance(m, InstallSnapshotResp)]
    assert answer.success and answer.next_offset == send.total
