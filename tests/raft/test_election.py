"""Leader election (Raft §5.2, §5.4.1; dissertation §9.6 PreVote, §4.2.3 stickiness, §6.2)."""

from __future__ import annotations

import random

from resonetics.raft.config import RaftConfig
from resonetics.raft.messages import (
    AppendEntries,
    PreVote,
    PreVoteResp,
    RequestVote,
    RequestVoteResp,
)
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import HardState, Role
from tests.raft.harness import Network, extend_log


def test_election_elects_exactly_one_leader_per_term() -> None:
    """§5.2: randomized timeouts make one node time out first and win."""
    for seed in range(20):
        net = Network(["n1", "n2", "n3", "n4", "n5"], seed=seed)
        net.tick_and_deliver(30)
        leaders = net.leaders()
        assert len(leaders) == 1
        assert all(n.leader_id == leaders[0].node_id for n in net.nodes.values())
        assert all(n.term == leaders[0].term for n in net.nodes.values())


def test_election_timeout_is_drawn_from_the_injected_rng_in_range() -> None:
    """§5.2: a follower times out after [election_ticks, 2*election_ticks) ticks."""
    waits = set()
    for seed in range(40):
        node = RaftNode(
            RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3")), random.Random(seed)
        )
        ticks = 0
        while node.role is Role.FOLLOWER:
            node.tick()
            ticks += 1
        assert 10 <= ticks < 20
        waits.add(ticks)
    assert len(waits) > 3  # actually randomized

    a = RaftNode(RaftConfig(node_id="n1", initial_voters=("n1", "n2")), random.Random(7))
    b = RaftNode(RaftConfig(node_id="n1", initial_voters=("n1", "n2")), random.Random(7))
    for _ in range(25):
        a.tick()
        b.tick()
    assert a.ready().messages == b.ready().messages  # same seed, same behaviour


def test_single_voter_bootstraps_by_campaigning() -> None:
    net = Network(["n1"])
    net.nodes["n1"].campaign()
    net.process_all()
    assert net.nodes["n1"].role is Role.LEADER and net.nodes["n1"].commit_index == 1


def test_vote_granted_at_most_once_per_term_even_across_a_restart() -> None:
    """Figure 2 RequestVote: votedFor is persistent state."""
    net = Network(pre_vote=False)
    n3 = net.nodes["n3"]
    n3.step(
        RequestVote(
            src="n1", dst="n3", term=1, candidate_id="n1", last_log_index=0, last_log_term=0
        )
    )
    rd = net.process("n3")
    assert rd is not None and rd.messages[0] == RequestVoteResp(
        src="n3", dst="n1", term=1, vote_granted=True
    )
    net.restart("n3")
    n3 = net.nodes["n3"]
    assert (n3.term, n3.vote) == (1, "n1")
    n3.step(
        RequestVote(
            src="n2", dst="n3", term=1, candidate_id="n2", last_log_index=0, last_log_term=0
        )
    )
    rd = net.process("n3")
    assert rd is not None and rd.messages == [
        RequestVoteResp(src="n3", dst="n2", term=1, vote_granted=False)
    ]


def test_vote_response_leaves_in_the_same_ready_as_the_hard_state_recording_the_vote() -> None:
    node = RaftNode(RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")), random.Random(1))
    node.ready()
    node.step(
        RequestVote(
            src="n1", dst="n2", term=5, candidate_id="n1", last_log_index=0, last_log_term=0
        )
    )
    rd = node.ready()
    assert rd.hard_state == HardState(term=5, vote="n1", commit=0)
    assert [type(m) for m in rd.messages] == [RequestVoteResp]


def test_vote_refused_to_a_candidate_whose_log_is_less_up_to_date() -> None:
    """§5.4.1: compare last terms, then lengths."""
    log = extend_log([], [1, 1, 2])
    node = RaftNode(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")),
        random.Random(1),
        hard_state=HardState(term=2),
        entries=log,
    )
    for last_index, last_term, granted in [(5, 1, False), (2, 2, False), (3, 2, True)]:
        node.step(
            RequestVote(
                src="n1",
                dst="n2",
                term=3,
                candidate_id="n1",
                last_log_index=last_index,
                last_log_term=last_term,
            )
        )
        (resp,) = node.ready().messages
        assert isinstance(resp, RequestVoteResp) and resp.vote_granted is granted


def test_prevote_prevents_term_inflation_by_a_partitioned_node() -> None:
    """Dissertation §9.6: a node that cannot win does not bump its term."""
    net = Network(seed=3)
    net.elect("n1")
    term = net.nodes["n1"].term
    net.isolate("n3")
    net.tick_and_deliver(100)
    assert net.nodes["n3"].term == term
    assert net.nodes["n3"].role is Role.PRE_CANDIDATE
    net.heal()
    net.tick_and_deliver(5)
    assert net.nodes["n1"].role is Role.LEADER and net.nodes["n1"].term == term


def test_without_prevote_a_partitioned_node_inflates_its_term() -> None:
    """The contrast case: why PreVote exists."""
    net = Network(seed=3, pre_vote=False)
    net.elect("n1")
    net.isolate("n3")
    net.tick_and_deliver(100)
    assert net.nodes["n3"].term > net.nodes["n1"].term + 2


def test_prevote_changes_no_state_on_the_receiver() -> None:
    node = RaftNode(RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")), random.Random(1))
    node.ready()
    node.step(
        PreVote(src="n1", dst="n2", term=1, candidate_id="n1", last_log_index=0, last_log_term=0)
    )
    rd = node.ready()
    assert (node.term, node.vote) == (0, None) and rd.hard_state is None
    assert rd.messages == [PreVoteResp(src="n2", dst="n1", term=1, vote_granted=True)]


def test_precandidate_becomes_candidate_only_with_a_majority_of_prevotes() -> None:
    net = Network(seed=1)
    net.isolate("n1")
    net.nodes["n1"].campaign()
    net.deliver()
    assert net.nodes["n1"].role is Role.PRE_CANDIDATE and net.nodes["n1"].term == 0
    net.heal()
    net.nodes["n1"].campaign()
    net.deliver()
    assert net.nodes["n1"].role is Role.LEADER and net.nodes["n1"].term == 1


def test_leader_stickiness_ignores_votes_while_a_leader_is_heard() -> None:
    """§4.2.3: a follower that heard from a leader within the election timeout ignores
    RequestVote (and PreVote), so a rejoining node cannot depose a healthy leader."""
    net = Network(seed=2)
    net.elect("n1")
    for msg in (
        RequestVote(
            src="n3", dst="n2", term=9, candidate_id="n3", last_log_index=99, last_log_term=8
        ),
        PreVote(src="n3", dst="n2", term=9, candidate_id="n3", last_log_index=99, last_log_term=8),
    ):
        net.nodes["n2"].step(msg)
        rd = net.process("n2")
        assert rd is None or rd.messages == []
        assert net.nodes["n2"].term == 1 and net.nodes["n2"].leader_id == "n1"
    # The same request after the lease lapsed is granted.
    net.expire_leases()
    net.nodes["n2"].step(
        RequestVote(
            src="n3", dst="n2", term=9, candidate_id="n3", last_log_index=99, last_log_term=8
        )
    )
    rd = net.process("n2")
    assert rd is not None and rd.messages[-1] == RequestVoteResp(
        src="n2", dst="n3", term=9, vote_granted=True
    )


def test_vote_response_from_a_higher_term_makes_the_candidate_step_down() -> None:
    node = RaftNode(
        RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3"), pre_vote=False),
        random.Random(1),
    )
    node.campaign()
    assert node.role is Role.CANDIDATE and node.term == 1
    node.step(RequestVoteResp(src="n2", dst="n1", term=4, vote_granted=False))
    assert node.role is Role.FOLLOWER and node.term == 4 and node.vote is None


def test_candidate_steps_down_when_a_leader_of_its_term_appears() -> None:
    node = RaftNode(
        RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3"), pre_vote=False),
        random.Random(1),
    )
    node.campaign()
    node.step(
        AppendEntries(
            src="n2",
            dst="n1",
            term=1,
            leader_id="n2",
            prev_log_index=0,
            prev_log_term=0,
            prev_log_hash=node.hash_at(0) or "",
            leader_commit=0,
        )
    )
    assert node.role is Role.FOLLOWER and node.leader_id == "n2" and node.vote == "n1"


def test_learners_never_campaign() -> None:
    from resonetics.raft.membership import Membership

    node = RaftNode(
        RaftConfig(node_id="n4", initial_voters=("n1", "n2", "n3")),
        random.Random(1),
        membership=Membership(voters=("n1", "n2", "n3"), learners=("n4",)),
    )
    assert node.role is Role.LEARNER
    for _ in range(100):
        node.tick()
    node.campaign()
    assert node.role is Role.LEARNER and node.term == 0 and not node.ready().messages


def test_check_quorum_leader_steps_down_when_it_cannot_hear_a_majority() -> None:
    """Dissertation §6.2: a leader cut off from a majority stops acting as leader."""
    net = Network(seed=4)
    net.elect("n1")
    net.tick_and_deliver(30)
    assert net.nodes["n1"].role is Role.LEADER
    net.isolate("n1")
    for _ in range(2 * 10):
        net.tick("n1")
    assert net.nodes["n1"].role is Role.FOLLOWER


def test_stale_leader_learns_the_new_term_from_a_rejection() -> None:
    net = Network(seed=5, check_quorum=False)
    net.elect("n1")
    net.isolate("n1")
    net.expire_leases()
    net.isolate("n1")
    net.elect("n2")
    assert net.nodes["n1"].role is Role.LEADER  # still thinks so, in an older term
    net.heal()
    net.tick("n1")  # its heartbeat is answered with the newer term
    net.deliver()
    assert net.nodes["n1"].role is Role.FOLLOWER
    assert net.nodes["n1"].term == net.nodes["n2"].term
