"""Linearizable reads through ReadIndex (dissertation §6.4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resonetics import errors
from resonetics.raft import quorum
from resonetics.raft.config import LEASE_CLOCK_DRIFT_MAX, lease_ticks_for
from resonetics.raft.membership import Membership
from resonetics.raft.messages import AppendEntries, AppendEntriesResp, Message, ReadIndex
from resonetics.raft.read_index import _SEQ_TICKS_MAX, ReadClock, ReadTracker
from resonetics.raft.ready import ReadState, Role
from tests.raft.harness import Network


def settled_leader(net: Network) -> str:
    net.elect("n1")
    net.tick_and_deliver(2)
    return "n1"


def test_read_is_served_once_a_quorum_confirms_leadership() -> None:
    net = Network(seed=1)
    leader = net.nodes[settled_leader(net)]
    leader.read_index("r1")
    rd = net.process("n1")
    assert rd is not None and rd.read_states == []
    beats = [m for m in rd.messages if isinstance(m, AppendEntries)]
    assert beats and all(m.read_seq >= 1 for m in beats)
    net.deliver()
    assert net.reads["n1"] == [ReadState("r1", leader.commit_index)]


def test_one_heartbeat_round_confirms_every_read_registered_before_it() -> None:
    net = Network(seed=1)
    leader = net.nodes[settled_leader(net)]
    for ctx in ("a", "b", "c"):
        leader.read_index(ctx)
    rd = net.process("n1")
    assert rd is not None
    assert sorted(m.dst for m in rd.messages if isinstance(m, AppendEntries)) == ["n2", "n3"]
    net.deliver()
    assert [r.ctx for r in net.reads["n1"]] == ["a", "b", "c"]


def test_acks_of_an_older_round_do_not_confirm_a_newer_read() -> None:
    net = Network(seed=1)
    leader = net.nodes[settled_leader(net)]
    leader.read_index("r")
    rd = net.process("n1")
    assert rd is not None
    round_seq = max(m.read_seq for m in rd.messages if isinstance(m, AppendEntries))
    net.queue.clear()
    for peer in ("n2", "n3"):
        leader.step(
            AppendEntriesResp(
                src=peer,
                dst="n1",
                term=leader.term,
                success=True,
                match_index=leader.commit_index,
                read_seq=round_seq - 1,
            )
        )
    assert net.process("n1") is None or net.reads["n1"] == []
    leader.step(
        AppendEntriesResp(
            src="n2",
            dst="n1",
            term=leader.term,
            success=True,
            match_index=leader.commit_index,
            read_seq=round_seq,
        )
    )
    net.process("n1")
    assert [r.ctx for r in net.reads["n1"]] == ["r"]


def test_new_leader_serves_no_read_before_its_noop_commits() -> None:
    """§6.4 step 1: until an entry of its term commits, a leader may not know the commit index."""
    net = Network(seed=1)
    appends_blocked = True

    def drop(m: Message) -> bool:
        return appends_blocked and isinstance(m, AppendEntries) and m.src == "n1"

    net.drop = drop
    leader = net.elect("n1")
    assert leader.commit_index == 0
    leader.read_index("early")
    net.process("n1")
    net.deliver()
    assert net.reads["n1"] == []
    appends_blocked = False
    net.tick_and_deliver(2)
    assert net.reads["n1"] == [ReadState("early", 1)]  # 1 = the NOOP


def test_deposed_leader_serves_no_read_and_drops_pending_ones() -> None:
    net = Network(seed=1)
    leader = net.nodes[settled_leader(net)]
    net.isolate("n1")
    leader.read_index("stale?")
    for _ in range(25):
        net.tick("n1")
        net.deliver()
    assert leader.role is Role.FOLLOWER  # CheckQuorum deposed it
    assert net.reads["n1"] == []
    assert net.dropped_reads["n1"] == ["stale?"]


def test_single_voter_cluster_answers_reads_immediately() -> None:
    net = Network(["n1"])
    n1 = net.nodes["n1"]
    n1.campaign()
    net.process_all()
    n1.read_index("solo")
    rd = net.process("n1")
    assert rd is not None and rd.read_states == [ReadState("solo", n1.commit_index)]


def test_follower_read_is_forwarded_and_served_at_the_leaders_index() -> None:
    """Dissertation §6.4.1: a follower asks the leader for the read index."""
    net = Network(seed=1)
    settled_leader(net)
    net.propose("n1", "x")
    net.deliver()
    net.nodes["n2"].read_index("f1")
    rd = net.process("n2")
    assert rd is not None
    forwarded = [m for m in rd.messages if isinstance(m, ReadIndex)]
    assert [(m.dst, m.read_id) for m in forwarded] == [("n1", forwarded[0].read_id)]
    net.deliver()
    assert net.reads["n2"] == [ReadState("f1", net.nodes["n1"].commit_index)]
    assert net.reads["n1"] == []  # the leader answered with a message, not a local read


def test_a_follower_read_comes_back_with_the_commit_index_it_needs() -> None:
    """A new commit index normally waits for the next heartbeat; a follower that asked
    for a read index learns it with the answer, so it can serve without a tick."""
    net = Network(seed=1)
    settled_leader(net)
    net.propose("n1", "x")
    net.deliver()
    index = net.nodes["n1"].commit_index
    assert net.nodes["n2"].commit_index < index  # not yet told
    net.nodes["n2"].read_index("f1")
    net.deliver()
    assert net.reads["n2"] == [ReadState("f1", index)]
    assert net.nodes["n2"].commit_index >= index
    assert "x" in net.applied_data("n2")


def test_read_index_without_a_known_leader_raises_not_leader() -> None:
    net = Network(seed=1)
    with pytest.raises(errors.NotLeader) as exc:
        net.nodes["n2"].read_index("x")
    assert exc.value.leader_id is None


def test_forwarded_read_is_dropped_when_the_follower_loses_its_leader() -> None:
    net = Network(seed=1)
    settled_leader(net)
    net.isolate("n1")
    net.nodes["n2"].read_index("lost")
    net.process("n2")
    net.tick("n2", times=net.config("n2").election_ticks)
    net.process("n2")
    assert "lost" in net.dropped_reads["n2"]
    assert net.reads["n2"] == []


def _lease_network() -> Network:
    return Network(seed=1, lease_ticks=lease_ticks_for(10), election_ticks=10)


def test_lease_read_is_served_without_a_heartbeat_round() -> None:
    net = _lease_network()
    leader = net.nodes[settled_leader(net)]
    net.tick_and_deliver(1)  # a periodic round echoed by a quorum starts the lease
    leader.read_index("lease", lease=True)
    rd = net.process("n1")
    assert rd is not None
    assert rd.read_states == [ReadState("lease", leader.commit_index)]
    assert not [m for m in rd.messages if isinstance(m, AppendEntries)]


def test_lease_expires_when_no_quorum_echoes_heartbeats() -> None:
    """An isolated leader must not serve lease reads once another could be elected."""
    net = _lease_network()
    leader = net.nodes[settled_leader(net)]
    net.tick_and_deliver(1)
    net.isolate("n1")
    net.tick("n1", times=lease_ticks_for(10))
    net.process("n1")
    leader.read_index("stale?", lease=True)
    rd = net.process("n1")
    assert rd is None or rd.read_states == []  # falls back to a ReadIndex round
    net.deliver()
    assert net.reads["n1"] == []  # and nobody answers it


def test_no_lease_reads_while_a_leadership_transfer_is_in_progress() -> None:
    """TimeoutNow lets the target bypass stickiness, so the lease no longer holds."""
    net = _lease_network()
    leader = net.nodes[settled_leader(net)]
    net.tick_and_deliver(1)
    net.isolate("n2")
    leader.transfer_leadership("n2")
    leader.read_index("during-transfer", lease=True)
    rd = net.process("n1")
    assert rd is None or rd.read_states == []


def test_lease_ticks_stay_below_the_election_timeout_by_the_drift_margin() -> None:
    for election_ticks in (2, 5, 10, 12, 50):
        lease = lease_ticks_for(election_ticks)
        assert 0 <= lease < election_ticks * (1 - LEASE_CLOCK_DRIFT_MAX)


def test_read_clock_forgets_the_oldest_sequence_numbers_first() -> None:
    """Only the newest rounds' hand-out ticks are kept, and exactly those: a lease can
    start only from a round still remembered."""
    clock = ReadClock()
    for tick in range(3 * _SEQ_TICKS_MAX):
        clock.next_seq(10 * tick)
        newest = clock.seq
        kept = list(range(max(1, newest - _SEQ_TICKS_MAX + 1), newest + 1))
        assert list(clock.seq_ticks) == kept
        assert all(clock.seq_ticks[s] == 10 * (s - 1) for s in kept)


_NODES = ["a", "b", "c", "d", "e"]
_memberships = st.builds(
    lambda inc, out: Membership(voters=tuple(inc), voters_outgoing=tuple(out)),
    st.lists(st.sampled_from(_NODES), min_size=1, max_size=5, unique=True),
    st.one_of(st.just([]), st.lists(st.sampled_from(_NODES), min_size=1, max_size=5, unique=True)),
)


@given(
    _memberships,
    st.sampled_from(_NODES),
    st.integers(min_value=1, max_value=12),
    st.dictionaries(st.sampled_from(_NODES), st.integers(min_value=1, max_value=12)),
)
def test_reads_confirmed_are_those_a_quorum_has_echoed(
    membership: Membership, leader: str, registered: int, echoes: dict[str, int]
) -> None:
    """Confirmed at once per ack (``echoed_by_quorum``) is the same as read by read: a
    read is confirmed exactly when the nodes that echoed its seq, the leader included,
    form a (joint) quorum; learners and non-members count for nothing; order is kept;
    the lease starts at the newest round a quorum echoed. Checked against the tally."""
    tracker = ReadTracker()
    for n in range(registered):
        tracker.register(f"r{n}", commit_index=n, now=100 + n)
    for node, seq in echoes.items():
        tracker.record_ack(node, min(seq, registered))

    def quorum_echoed(seq: int) -> bool:
        nodes = {n for n, s in tracker.acked_seq.items() if s >= seq} | {leader}
        return quorum.has_quorum(membership, nodes)

    expected: list[str] = []
    for read in tracker.pending:
        if not quorum_echoed(read.seq):
            break
        expected.append(str(read.ctx))
    newest = max((s for s in range(1, registered + 1) if quorum_echoed(s)), default=None)
    assert tracker.lease_start(leader, membership) == (None if newest is None else 99 + newest)
    assert [str(r.ctx) for r in tracker.confirmed(leader, membership)] == expected
    assert [str(r.ctx) for r in tracker.pending] == [
        f"r{n}" for n in range(len(expected), registered)
    ]
