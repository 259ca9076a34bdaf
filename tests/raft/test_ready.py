"""The Ready / advance contract (raft/ready.py) and restarting from persisted state."""

from __future__ import annotations

import random

from resonetics.raft.config import RaftConfig
from resonetics.raft.entry import GENESIS
from resonetics.raft.node import RaftNode
from resonetics.raft.ready import HardState, Role, SoftState
from tests.raft.harness import Network, extend_log


def test_a_fresh_node_reports_its_soft_state_once_then_is_quiet() -> None:
    node = RaftNode(RaftConfig(node_id="n1", initial_voters=("n1", "n2", "n3")), random.Random(1))
    assert node.has_ready()
    rd = node.ready()
    assert rd.soft_state == SoftState(Role.FOLLOWER, None, 0)
    assert not rd.must_persist() and rd.messages == []
    node.advance(rd)
    assert not node.has_ready()


def test_restart_resumes_from_persisted_state_and_applies_from_applied_plus_one() -> None:
    log = extend_log([], [1, 1, 1, 2])
    node = RaftNode(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")),
        random.Random(1),
        hard_state=HardState(term=2, vote="n1", commit=3),
        anchor=GENESIS,
        entries=log,
        applied=1,
    )
    assert (node.term, node.vote, node.commit_index, node.applied) == (2, "n1", 3, 1)
    rd = node.ready()
    assert rd.entries == [] and rd.hard_state is None  # all of it is already durable
    assert [e.index for e in rd.committed_entries] == [2, 3]
    node.advance(rd)
    assert node.applied == 3 and not node.has_ready()


def test_cluster_survives_restarting_every_node() -> None:
    net = Network(seed=4)
    net.elect("n1")
    for i in range(5):
        net.propose("n1", i)
    net.deliver()
    for node in net.ids:
        net.restart(node)
    net.tick_and_deliver(40)
    (leader,) = net.leaders()
    net.propose(leader.node_id, "after")
    net.deliver()
    net.tick_and_deliver(2)
    for node in net.ids:
        assert net.applied_data(node) == [0, 1, 2, 3, 4, "after"]


def test_compaction_keeps_the_node_working_from_a_snap_dummy_anchor() -> None:
    net = Network(["n1"])
    n1 = net.nodes["n1"]
    n1.campaign()
    net.process_all()
    for i in range(4):
        net.propose("n1", i)
    net.process_all()
    h3 = n1.hash_at(3)
    n1.compact(3)
    assert n1.anchor.index == 3 and n1.anchor.hash == h3 and n1.term_at(2) is None
    net.propose("n1", "next")
    net.process_all()
    assert n1.commit_index == 6 and net.applied_data("n1")[-1] == "next"


def test_a_long_backlog_is_handed_out_to_apply_in_slices_in_order() -> None:
    """A restarted node with a long committed log gets it to apply a slice per Ready
    (``apply_entries_max`` entries, about ``apply_bytes_max`` bytes), each entry once
    and in order; ``apply_sliced`` says more is due, so the executor can let the node's
    other work (acks, votes) run in between."""
    log = extend_log([], [1] * 25, data={"v": "x" * 100})
    node = RaftNode(
        RaftConfig(
            node_id="n2", initial_voters=("n1", "n2"), apply_entries_max=10, apply_bytes_max=500
        ),
        random.Random(1),
        hard_state=HardState(term=1, vote="n1", commit=25),
        anchor=GENESIS,
        entries=log,
    )
    handed: list[list[int]] = []
    sliced: list[bool] = []
    while node.has_ready():
        rd = node.ready()
        handed.append([e.index for e in rd.committed_entries])
        sliced.append(node.apply_sliced)
        node.advance(rd)
    # About 500 bytes: an entry counts its data (110 bytes) plus 128, so two fit.
    assert [len(h) for h in handed] == [2] * 12 + [1]
    assert [i for h in handed for i in h] == list(range(1, 26))
    assert sliced == [True] * 12 + [False]
    assert node.applied == 25


def test_a_slice_holds_at_least_one_entry_and_at_most_the_count() -> None:
    log = extend_log([], [1] * 12, data={"v": "x" * 5000})

    def follower(**budget: int) -> RaftNode:
        return RaftNode(
            RaftConfig(node_id="n2", initial_voters=("n1", "n2"), **budget),
            random.Random(1),
            hard_state=HardState(term=1, vote="n1", commit=12),
            anchor=GENESIS,
            entries=log,
        )

    node = follower(apply_entries_max=4)
    rd = node.ready()
    assert [e.index for e in rd.committed_entries] == [1, 2, 3, 4] and node.apply_sliced
    node.advance(rd)
    small = follower(apply_bytes_max=10)
    rd = small.ready()
    assert [e.index for e in rd.committed_entries] == [1]  # larger than the budget: still one
