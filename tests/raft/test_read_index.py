"""Linearizable reads through ReadIndex (dissertation §6.4)."""

from __future__ import annotations

import pytest

from resonetics import errors
from resonetics.raft.messages import AppendEntries, AppendEntriesResp, Message
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
    net.process("n1")
    net.queue.clear()
    for peer in ("n2", "n3"):
        leader.step(
            AppendEntriesResp(
                src=peer,
                dst="n1",
                term=leader.term,
                success=True,
                match_index=leader.commit_index,
                read_seq=0,
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
            read_seq=1,
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


def test_read_index_on_a_follower_names_the_leader() -> None:
    net = Network(seed=1)
    settled_leader(net)
    with pytest.raises(errors.NotLeader) as exc:
        net.nodes["n2"].read_index("x")
    assert exc.value.leader_id == "n1" and exc.value.term == net.nodes["n1"].term
