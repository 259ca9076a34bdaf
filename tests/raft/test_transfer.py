"""Leadership transfer with TimeoutNow (dissertation §3.10)."""

from __future__ import annotations

import pytest

from resonetics import errors
from resonetics.raft.messages import PreVote, RequestVote, TimeoutNow
from resonetics.raft.ready import Role
from tests.raft.harness import Network


def test_transfer_hands_leadership_to_an_up_to_date_follower() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.tick_and_deliver(2)
    term = net.nodes["n1"].term
    net.nodes["n1"].transfer_leadership("n2")
    net.deliver()
    assert net.nodes["n2"].role is Role.LEADER and net.nodes["n2"].term == term + 1
    assert net.nodes["n1"].role is Role.FOLLOWER


def test_transfer_target_campaigns_without_prevote_and_past_stickiness() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.tick_and_deliver(2)
    net.sent.clear()
    net.nodes["n1"].transfer_leadership("n3")
    net.deliver()
    from_n3 = [m for m in net.sent if m.src == "n3"]
    assert not any(isinstance(m, PreVote) for m in from_n3)
    votes = [m for m in from_n3 if isinstance(m, RequestVote)]
    assert votes and all(m.transfer for m in votes)
    assert net.nodes["n3"].role is Role.LEADER  # n2 was in lease yet voted


def test_transfer_first_brings_the_target_up_to_date() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.isolate("n2")
    for i in range(5):
        net.propose("n1", i)
    net.deliver()
    net.heal()
    net.sent.clear()
    net.nodes["n1"].transfer_leadership("n2")
    net.deliver()
    timeout_now = [m for m in net.sent if isinstance(m, TimeoutNow)]
    assert len(timeout_now) == 1
    assert net.nodes["n2"].role is Role.LEADER
    assert list(range(5)) == [d for d in net.applied_data("n2") if isinstance(d, int)]


def test_leader_refuses_proposals_while_transferring() -> None:
    net = Network(seed=1)
    net.elect("n1")
    net.isolate("n2")
    net.propose("n1", "x")
    net.nodes["n1"].transfer_leadership("n2")
    with pytest.raises(errors.ProposalDropped):
        net.nodes["n1"].propose("y")


def test_transfer_aborts_after_an_election_timeout() -> None:
    net = Network(seed=1, check_quorum=False)
    net.elect("n1")
    net.isolate("n2")
    net.propose("n1", "x")
    net.nodes["n1"].transfer_leadership("n2")
    for _ in range(10):
        net.tick("n1")
    assert net.nodes["n1"].role is Role.LEADER
    assert net.nodes["n1"].propose("y") > 0


def test_transfer_to_a_non_voter_is_refused() -> None:
    net = Network(seed=1)
    net.elect("n1")
    with pytest.raises(errors.ConfigChangeRejected):
        net.nodes["n1"].transfer_leadership("n9")
