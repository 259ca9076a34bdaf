"""The commit rule (Raft §5.3, §5.4.2 Figure 8) and the apply stream of Ready."""

from __future__ import annotations

import random

import msgspec
import pytest

from resonetics.errors import InvariantViolation
from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import EntryType
from resonetics.raft.messages import AppendEntries, AppendEntriesResp, Message, RequestVoteResp
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import HardState, Role
from tests.raft.harness import Network, extend_log


def test_leader_does_not_commit_entry_from_previous_term() -> None:
    """Raft §5.4.2, Figure 8: an old-term entry on a majority may still be overwritten.

    (c) S1, leader of term 4, replicates its term-2 entry at index 2 to S3: it is now on
    a majority (S1, S2, S3) but S1 must not commit it, because (d) S5 (last term 3) can
    still be elected and overwrite it. Only when an entry of S1's own term reaches a
    majority (e) does index 2 commit with it.
    """
    net = Network(["s1", "s2", "s3", "s4", "s5"], seed=8, append_entries_max=1)
    base = extend_log([], [1])
    s1_log = extend_log(base, [2])
    s5_log = extend_log(base, [3])
    for node, log in [("s1", s1_log), ("s2", s1_log), ("s3", base), ("s4", base), ("s5", s5_log)]:
        net.install(node, log, HardState(term=3, commit=1))

    def carries_index_3(m: Message) -> bool:
        return isinstance(m, AppendEntries) and any(e.index == 3 for e in m.entries)

    net.drop = carries_index_3  # S1's term-4 NOOP stays on S1 alone
    net.isolate("s5")
    s1 = net.elect("s1")
    assert s1.term == 4
    net.tick_and_deliver(3)
    assert net.nodes["s3"].term_at(2) == 2  # index 2 (term 2) is on s1, s2, s3: a majority
    assert s1.commit_index == 1  # ... and still not committed

    # (d) S1 crashes; S5 wins with votes from S2, S3, S4 and overwrites index 2.
    net.down.add("s1")
    net.heal()
    net.drop = lambda m: False
    net.expire_leases()
    net.nodes["s5"].campaign()  # its pre-vote for term 4 is refused; it learns term 4
    net.deliver()
    s5 = net.elect("s5")
    net.tick_and_deliver(2)
    assert net.nodes["s3"].term_at(2) == 3 and net.nodes["s2"].term_at(2) == 3
    assert s5.commit_index >= 2


def test_leader_commits_previous_term_entries_with_its_own_noop() -> None:
    """Figure 8 (e): once the current term's entry is on a majority, earlier ones commit too."""
    net = Network(["s1", "s2", "s3"], seed=8)
    log = extend_log([], [1, 2])
    for node in ("s1", "s2"):
        net.install(node, log, HardState(term=2, commit=0))
    s1 = net.elect("s1")
    assert s1.commit_index == 3 and s1.entry_at(3).type is EntryType.NOOP
    assert [e.index for e in net.disks["s1"].applied] == [1, 2, 3]


def test_leader_counts_itself_only_for_entries_advance_confirmed_durable() -> None:
    """The runtime may send before its own fsync; the leader must not count itself early."""
    node = RaftNode(
        RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3", "n4", "n5"), pre_vote=False),
        random.Random(1),
    )
    node.campaign()
    for peer in ("n2", "n3"):
        node.step(RequestVoteResp(src=peer, dst="n1", term=1, vote_granted=True))
    assert node.role is Role.LEADER
    rd = node.ready()
    assert [e.index for e in rd.entries] == [1]
    for peer in ("n2", "n3"):
        node.step(AppendEntriesResp(src=peer, dst="n1", term=1, success=True, match_index=1))
    assert node.commit_index == 0  # 2 followers + a non-durable leader is not 3 of 5
    node.advance(rd)
    assert node.commit_index == 1


def test_committed_entries_come_out_in_order_exactly_once() -> None:
    net = Network(seed=2)
    net.elect("n1")
    for i in range(20):
        net.propose("n1", i)
        if i % 3 == 0:
            net.deliver()
    net.deliver()
    net.tick_and_deliver(2)
    for node in net.ids:
        applied = net.disks[node].applied
        assert [e.index for e in applied] == list(range(1, net.nodes[node].commit_index + 1))
        assert net.applied_data(node) == list(range(20))
        assert net.nodes[node].applied == net.nodes[node].commit_index


def test_committed_entries_are_handed_out_once_even_if_advance_comes_late() -> None:
    net = Network(["n1"])
    n1 = net.nodes["n1"]
    n1.campaign()
    rd1 = n1.ready()
    n1.advance(rd1)
    n1.propose("a")
    rd2 = n1.ready()
    rd3 = n1.ready()  # before advance(rd2): nothing handed out twice
    assert rd3.entries == [] and rd3.committed_entries == []
    n1.advance(rd2)
    rd4 = n1.ready()
    assert [e.data for e in rd2.committed_entries + rd4.committed_entries] == [None, "a"]


def _leader_of_three() -> RaftNode:
    node = RaftNode(
        RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3"), pre_vote=False),
        random.Random(1),
    )
    node.campaign()
    node.step(RequestVoteResp(src="n2", dst="n1", term=1, vote_granted=True))
    assert node.role is Role.LEADER
    return node


def _ack(node: RaftNode, peer: str, match: int) -> None:
    node.step(AppendEntriesResp(src=peer, dst="n1", term=1, success=True, match_index=match))


def test_take_committed_hands_out_committed_entries_on_the_leaders_disk_once_in_order() -> None:
    """``take_committed``: what an ack committed, applied without waiting for a Ready, but
    never an entry the leader has not written yet (even one two followers have made
    durable, hence committed), never twice, and never out of order with the Readys."""
    node = _leader_of_three()
    noop = node.ready()
    assert [e.index for e in noop.entries] == [1]
    node.advance(noop)  # index 1 on the leader's disk
    assert node.take_committed() == []  # not committed yet
    node.propose({"op": "kv_set", "args": {"k": "a", "v": 1}})
    in_flight = node.ready()  # index 2 handed out to write; not durable here yet
    assert [e.index for e in in_flight.entries] == [2] and in_flight.committed_entries == []

    _ack(node, "n2", 1)
    assert node.commit_index == 1
    assert [e.index for e in node.take_committed()] == [1]
    assert node.take_committed() == []  # handed out once
    for peer in ("n2", "n3"):
        _ack(node, peer, 2)
    assert node.commit_index == 2  # two followers are a majority of three
    assert node.take_committed() == []  # ... but index 2 is not on the leader's disk yet
    assert node.applied == 0

    node.advance(in_flight)
    node.applied_to(1)  # the driver confirms what it applied after the Ready in flight
    assert node.applied == 1
    assert [e.index for e in node.take_committed()] == [2]
    node.applied_to(2)
    assert node.applied == 2
    assert node.ready().committed_entries == []  # the Readys never hand them out again


def test_applied_to_past_what_was_handed_out_is_an_invariant_violation() -> None:
    node = _leader_of_three()
    noop = node.ready()
    node.advance(noop)
    _ack(node, "n2", 1)
    with pytest.raises(InvariantViolation):
        node.applied_to(1)  # committed, but never handed out
    assert [e.index for e in node.take_committed()] == [1]
    with pytest.raises(InvariantViolation):
        node.applied_to(2)


def test_a_follower_takes_nothing_outside_a_ready() -> None:
    """Only a leader's clients wait on its applies; a follower applies by its Readys."""
    leader = _leader_of_three()
    noop = leader.ready()
    follower = RaftNode(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")), random.Random(2)
    )
    append = next(m for m in noop.messages if isinstance(m, AppendEntries) and m.dst == "n2")
    follower.step(append)
    rd = follower.ready()
    follower.advance(rd)
    entry = append.entries[0]
    heartbeat = msgspec.structs.replace(
        append,
        entries=[],
        prev_log_index=entry.index,
        prev_log_term=entry.term,
        prev_log_hash=entry.hash,
        leader_commit=entry.index,
    )
    follower.step(heartbeat)  # index 1 is on its disk and now committed
    assert follower.commit_index == 1 and follower.applied == 0
    assert follower.take_committed() == []
    assert [e.index for e in follower.ready().committed_entries] == [1]
