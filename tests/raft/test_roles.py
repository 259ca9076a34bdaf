"""Role-only state (raft/roles.py) is made with the role and gone with it."""

from __future__ import annotations

import pytest

from resonetics import errors
from resonetics.raft.messages import AppendEntries, ReadIndexResp, RequestVoteResp
from resonetics.raft.ready import Role
from resonetics.raft.roles import CandidateState, FollowerState, LeaderState
from tests.raft.harness import Network


def _step_down_by_check_quorum(net: Network, node: str) -> None:
    """Cut ``node`` off until CheckQuorum makes it a follower (same term)."""
    net.isolate(node)
    ticks = net.config(node).election_ticks
    for _ in range(2 * ticks):
        net.tick(node)
        if net.nodes[node].role is not Role.LEADER:
            return
    raise AssertionError(f"{node} still leads after {2 * ticks} ticks cut off")


def test_leader_state_does_not_survive_step_down() -> None:
    """Progress, pending reads and a transfer target belong to one leadership."""
    net = Network(seed=1)
    n1 = net.elect("n1")
    net.isolate("n2")
    net.propose("n1", "x")
    net.deliver()
    n1.transfer_leadership("n2")  # n2 lags: the transfer waits, proposals are refused
    with pytest.raises(errors.ProposalDropped):
        n1.propose("refused while transferring")
    net.heal()
    net.isolate("n1")
    n1.read_index("r1")  # cut off: never confirmed
    net.process("n1")
    _step_down_by_check_quorum(net, "n1")
    net.process("n1")
    assert "r1" in net.dropped_reads["n1"]  # the pending read failed with the leadership
    assert n1.progress_of("n2") is None and n1.progress_of("n3") is None
    assert isinstance(n1._state, FollowerState)
    net.heal()
    net.expire_leases()
    again = net.elect("n1")
    # The next leadership starts without the old transfer target or reads.
    again.propose("accepted")
    assert isinstance(again._state, LeaderState) and again._state.transfer_target is None
    assert not again._state.reads.pending


def test_each_leadership_gets_fresh_follower_progress() -> None:
    net = Network(seed=2)
    n1 = net.elect("n1")
    first = n1._state
    assert isinstance(first, LeaderState)
    _step_down_by_check_quorum(net, "n1")
    net.heal()
    net.expire_leases()
    again = net.elect("n1")
    assert isinstance(again._state, LeaderState) and again._state is not first
    for peer, pr in again._state.progress.items():
        assert pr is not first.progress.get(peer)


def test_candidate_votes_do_not_carry_into_the_next_round() -> None:
    """A vote granted in one round is not counted in the next (same node, new state)."""
    net = Network(seed=3, pre_vote=False)
    n1 = net.nodes["n1"]
    net.isolate("n1")
    n1.campaign()
    net.process("n1")
    term = n1.term
    n1.step(RequestVoteResp(src="n2", dst="n1", term=term, vote_granted=True))
    # Won with n2's vote in this round; a fresh round in a higher term starts again.
    assert n1.role is Role.LEADER
    _step_down_by_check_quorum(net, "n1")
    n1.campaign()
    net.process("n1")
    assert n1.role is Role.CANDIDATE and n1.term == term + 1
    assert isinstance(n1._state, CandidateState)
    assert n1._state.votes == {"n1": True}


def test_follower_reads_are_dropped_when_the_follower_campaigns() -> None:
    net = Network(seed=4)
    net.elect("n1")
    n2 = net.nodes["n2"]
    net.isolate("n2")
    n2.read_index("fr")  # forwarded to n1, lost
    net.process("n2")
    n2.campaign()
    net.process("n2")
    assert "fr" in net.dropped_reads["n2"]
    assert not isinstance(n2._state, FollowerState)


def test_late_read_answer_does_not_match_a_newer_follower_read() -> None:
    """Read ids come from one node-lifetime counter: a new follower term never reuses one."""
    net = Network(seed=5)
    net.elect("n1")
    n2 = net.nodes["n2"]
    net.isolate("n2")
    n2.read_index("old")
    net.process("n2")
    first_id = next(iter(n2._following.reads.sent))
    n2.campaign()  # drops "old"
    net.process("n2")
    genesis_hash = net.nodes["n1"].hash_at(0)
    assert genesis_hash is not None
    heartbeat = AppendEntries(
        src="n1",
        dst="n2",
        term=n2.term + 1,
        leader_id="n1",
        prev_log_index=0,
        prev_log_term=0,
        prev_log_hash=genesis_hash,
        entries=[],
        leader_commit=0,
    )
    n2.step(heartbeat)  # a follower again, of a newer term
    net.process("n2")
    n2.read_index("new")
    new_id = next(iter(n2._following.reads.sent))
    assert new_id != first_id
    assert isinstance(n2._state, FollowerState)
    # A late answer to the old read, carrying its id: it must not answer the new one.
    n2.step(ReadIndexResp(src="n1", dst="n2", term=n2.term, read_id=first_id, index=1))
    net.process("n2")
    assert all(r.ctx != "new" for r in net.reads["n2"])


def test_read_seq_keeps_growing_across_leaderships() -> None:
    """Followers echo read_seq; a later leadership never hands out a smaller one."""
    net = Network(seed=6)
    n1 = net.elect("n1")
    net.tick_and_deliver(5)
    seq = n1._lead.reads.seq
    assert seq > 0
    _step_down_by_check_quorum(net, "n1")
    net.heal()
    net.expire_leases()
    again = net.elect("n1")
    assert again._lead.reads.seq >= seq


def test_asking_for_leader_state_as_a_follower_is_a_broken_invariant() -> None:
    net = Network(seed=7)
    with pytest.raises(errors.InvariantViolation, match="leader state"):
        _ = net.nodes["n1"]._lead
