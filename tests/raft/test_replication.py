"""Log replication (Raft §5.3, dissertation §5.3 fast backtracking, §10.2.1 pipelining)."""

from __future__ import annotations

import random

from resonetics.raft.config import RaftConfig, lease_ticks_for
from resonetics.raft.entry import Entry, EntryType, make_entry
from resonetics.raft.messages import AppendEntries, AppendEntriesResp
from resonetics.raft.node import RaftNode
from resonetics.raft.progress import ProgressState
from resonetics.raft.ready import HardState, Role
from tests.raft.harness import Network, extend_log


def follower(entries: list[Entry], *, term: int = 2, commit: int = 0) -> RaftNode:
    node = RaftNode(
        RaftConfig(node_id="n2", initial_voters=("n1", "n2", "n3")),
        random.Random(1),
        hard_state=HardState(term=term, commit=commit),
        entries=entries,
    )
    node.ready()
    return node


def append(
    node: RaftNode, leader_log: list[Entry], prev: int, n: int, commit: int, term: int = 2
) -> AppendEntriesResp:
    """Send ``n`` entries of ``leader_log`` after ``prev`` and return the single response."""
    prev_entry = leader_log[prev - 1] if prev else None
    node.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=term,
            leader_id="n1",
            prev_log_index=prev,
            prev_log_term=prev_entry.term if prev_entry else 0,
            prev_log_hash=prev_entry.hash if prev_entry else (node.hash_at(0) or ""),
            entries=leader_log[prev : prev + n],
            leader_commit=commit,
            read_seq=7,
        )
    )
    (resp,) = node.ready().messages
    assert isinstance(resp, AppendEntriesResp) and resp.read_seq == 7
    return resp


def test_leader_appends_a_noop_at_the_start_of_its_term() -> None:
    net = Network()
    leader = net.elect("n1")
    noop = leader.entry_at(leader.last_index)
    assert noop.type is EntryType.NOOP and noop.term == leader.term


def test_follower_acks_only_what_the_message_confirmed() -> None:
    """Figure 2: entries past prev+len(entries) may be a stale suffix, never acked (prototype bug)."""
    log = extend_log([], [1, 1, 1, 1, 1])
    node = follower(log)
    resp = append(node, log, prev=2, n=0, commit=0)
    assert resp.success and resp.match_index == 2
    assert node.last_index == 5  # nothing to cut: the follower keeps the rest
    resp = append(node, log, prev=2, n=1, commit=0)
    assert resp.success and resp.match_index == 3


def test_follower_commit_bounded_by_entries_the_leader_confirmed() -> None:
    """Commit = min(leader_commit, prev+len(entries)), NOT min(leader_commit, last index)."""
    log = extend_log([], [1, 1, 1, 1, 1])
    node = follower(log)
    append(node, log, prev=2, n=0, commit=5)
    assert node.commit_index == 2
    append(node, log, prev=2, n=2, commit=5)
    assert node.commit_index == 4


def test_commit_index_never_decreases() -> None:
    log = extend_log([], [1, 1, 1, 1])
    node = follower(log, commit=3)
    resp = append(node, log, prev=3, n=1, commit=1)
    assert resp.success and node.commit_index == 3
    resp = append(node, log, prev=4, n=0, commit=2)
    assert node.commit_index == 3


def test_append_rejected_when_prev_log_hash_differs_even_if_terms_agree() -> None:
    """The hash chain: a follower never splices the leader's entries onto another history."""
    mine = extend_log([], [1, 1], data="mine")
    theirs = extend_log([], [1, 1, 1], data="theirs")
    node = follower(mine)
    resp = append(node, theirs, prev=2, n=1, commit=0)
    assert not resp.success
    assert (resp.conflict_index, resp.conflict_term) == (2, 0)
    assert node.entries_from(1) == mine


def test_append_rejected_when_an_entry_does_not_link_to_the_one_before() -> None:
    log = extend_log([], [1, 1])
    node = follower(log[:1])
    forged = Entry(term=1, index=2, type=EntryType.CLIENT_CMD, data="evil", hash=log[1].hash)
    bad = [log[0], forged]
    resp = append(node, bad, prev=1, n=1, commit=0)
    assert not resp.success and node.last_index == 1


def test_conflicting_uncommitted_suffix_is_truncated_and_replaced() -> None:
    base = extend_log([], [1, 1])
    mine = extend_log(base, [2, 2])
    leader_log = extend_log(base, [3])
    node = follower(mine, term=3)
    resp = append(node, leader_log, prev=2, n=1, commit=0, term=3)
    assert resp.success and resp.match_index == 3
    rd_log = node.entries_from(1)
    assert rd_log == leader_log


def test_truncation_is_reported_in_ready_for_the_durable_log() -> None:
    base = extend_log([], [1])
    node = follower(extend_log(base, [2, 2]), term=3)
    leader_log = extend_log(base, [3])
    prev = leader_log[0]
    node.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=3,
            leader_id="n1",
            prev_log_index=1,
            prev_log_term=1,
            prev_log_hash=prev.hash,
            entries=leader_log[1:],
            leader_commit=0,
        )
    )
    rd = node.ready()
    assert rd.truncate_from == 2 and rd.entries == leader_log[1:]


def test_follower_never_truncates_a_committed_entry() -> None:
    """§5.4: an AppendEntries reaching below the commit index only learns the commit."""
    mine = extend_log([], [1, 1, 1])
    other = extend_log(mine[:1], [2, 2])
    node = follower(mine, term=2, commit=3)
    resp = append(node, other, prev=1, n=2, commit=3)
    assert resp.success and resp.match_index == 3
    assert node.entries_from(1) == mine


def test_partitioned_old_leader_uncommitted_entries_are_overwritten() -> None:
    """§5.3: the new leader forces followers' logs to duplicate its own."""
    net = Network(seed=6)
    net.elect("n1")
    net.isolate("n1")
    for i in range(3):
        net.propose("n1", f"lost-{i}")
    assert net.nodes["n1"].last_index == 4
    net.expire_leases()
    net.isolate("n1")
    net.elect("n2")
    net.propose("n2", "kept")
    net.deliver()
    net.heal()
    net.tick_and_deliver(3)
    logs = {i: [e.hash for e in net.nodes[i].entries_from(1)] for i in net.ids}
    assert logs["n1"] == logs["n2"] == logs["n3"]
    assert all("lost" not in str(d) for d in net.applied_data("n1"))
    assert "kept" in net.applied_data("n1")


def test_fast_backtracking_takes_one_round_trip_per_term_not_per_entry() -> None:
    """Dissertation §5.3: conflict_term/first index let the leader skip a term per round trip."""
    base = extend_log([], [1])
    leader_log = extend_log(base, [2] * 3 + [3] * 3 + [5] * 3)
    stale = extend_log(base, [2] * 10 + [3] * 10 + [4] * 10)
    net = Network(seed=1)
    for node, log in (("n1", leader_log), ("n2", leader_log), ("n3", stale)):
        net.install(node, log, HardState(term=5, commit=1))
    net.elect("n1")
    rejections = [
        m for m in net.sent if isinstance(m, AppendEntriesResp) and m.src == "n3" and not m.success
    ]
    assert 1 <= len(rejections) <= 3  # the divergent suffix is 30 entries long
    assert net.nodes["n3"].entries_from(1) == net.nodes["n1"].entries_from(1)


def test_short_follower_log_is_found_in_one_round_trip() -> None:
    net = Network(seed=1)
    log = extend_log([], [1] * 40)
    net.install("n1", log, HardState(term=1, commit=0))
    net.install("n2", log, HardState(term=1, commit=0))
    net.elect("n1")
    rejections = [
        m for m in net.sent if isinstance(m, AppendEntriesResp) and m.src == "n3" and not m.success
    ]
    assert len(rejections) == 1 and rejections[0].conflict_index == 1
    assert net.nodes["n3"].last_index == 41


def test_pipelining_is_bounded_by_the_inflight_window() -> None:
    net = Network(seed=1, inflight_appends_max=2, append_entries_max=1)
    leader = net.elect("n1")
    net.deliver()
    assert leader.progress_of("n2") is not None
    assert leader.progress_of("n2").state is ProgressState.REPLICATE  # type: ignore[union-attr]
    for i in range(10):
        leader.propose(i)
    rd = net.process("n1")
    assert rd is not None
    to_n2 = [m for m in rd.messages if isinstance(m, AppendEntries) and m.dst == "n2"]
    assert len(to_n2) == 2 and all(len(m.entries) == 1 for m in to_n2)
    net.deliver()
    assert leader.commit_index == leader.last_index
    net.tick_and_deliver(2)  # the round right after entries went out skips; the owed one
    assert all(net.nodes[i].commit_index == leader.last_index for i in net.ids)


def test_a_new_commit_index_rides_on_a_heartbeat_within_a_period_and_a_tick() -> None:
    net = Network(seed=1, heartbeat_ticks=3, election_ticks=12)
    leader = net.elect("n1")
    net.tick_and_deliver(3)
    net.sent.clear()
    leader.propose("x")
    net.deliver()
    assert leader.commit_index == leader.last_index
    appends = [m for m in net.sent if isinstance(m, AppendEntries)]
    assert len(appends) == 2 and all(len(m.entries) == 1 for m in appends)  # no empty extra
    assert all(net.nodes[i].commit_index < leader.commit_index for i in ("n2", "n3"))
    net.tick_and_deliver(3)  # the round: skipped, entries went out since the last one
    assert all(net.nodes[i].commit_index < leader.commit_index for i in ("n2", "n3"))
    net.tick_and_deliver(1)  # the heartbeat the skipped followers are owed
    assert all(net.nodes[i].commit_index == leader.commit_index for i in ("n2", "n3"))
    assert all(net.applied_data(i) == net.applied_data("n1") for i in ("n2", "n3"))


def heartbeats_to(net: Network, peer: str) -> list[AppendEntries]:
    return [m for m in net.sent if isinstance(m, AppendEntries) and m.dst == peer and not m.entries]


def test_a_periodic_round_skips_a_follower_that_entries_went_to_since_the_last_round() -> None:
    net = Network(seed=1, heartbeat_ticks=3, election_ticks=12, inflight_appends_max=1)
    net.elect("n1")
    net.tick_and_deliver(3)
    net.isolate("n3")
    net.propose("n1", "a")  # to both; n3's copy is lost and fills its window of one
    net.deliver()
    net.tick_and_deliver(3)
    net.propose("n1", "b")  # to n2 alone: n3 is paused
    net.deliver()
    net.sent.clear()
    net.tick(times=3)  # up to and including the next round
    assert heartbeats_to(net, "n3"), "a follower sent no entries in the period gets the round"
    assert not heartbeats_to(net, "n2"), "n2 got entries in the period: the round skips it"


def test_a_round_a_read_waits_on_goes_to_every_follower() -> None:
    net = Network(seed=1, heartbeat_ticks=3, election_ticks=12)
    leader = net.elect("n1")
    net.tick_and_deliver(3)
    net.drop = lambda m: isinstance(m, AppendEntriesResp)  # the read's round is never echoed
    leader.read_index("r")
    net.deliver()
    net.propose("n1", "x")  # entries to both followers after the read's round
    net.deliver()
    net.sent.clear()
    net.tick(times=3)
    assert heartbeats_to(net, "n2") and heartbeats_to(net, "n3")  # the round retries the read
    net.drop = lambda m: False
    net.deliver()
    assert [r.ctx for r in net.reads["n1"]] == ["r"]


def test_a_follower_that_gets_entries_every_period_hears_the_leader_and_its_commit() -> None:
    """Under a steady write load the rounds skip the followers, yet none of them times out,
    every follower keeps up with the commit index, and the leader's lease keeps renewing
    from the acks of the entries (each carrying the newest round's ``read_seq``)."""
    net = Network(seed=1, heartbeat_ticks=2, election_ticks=10, lease_ticks=lease_ticks_for(10))
    leader = net.elect("n1")
    net.tick_and_deliver(2)
    skipped = 0
    for i in range(40):
        leader.propose(i)
        net.sent.clear()
        net.tick_and_deliver(1)
        skipped += not heartbeats_to(net, "n2")
        assert leader.role is Role.LEADER and leader.term == net.nodes["n2"].term
        leader.read_index(("lease", i), lease=True)
        net.process("n1")
        assert net.reads["n1"][-1].ctx == ("lease", i), f"no lease read at write {i}"
        assert all(leader.commit_index - net.nodes[p].commit_index <= 1 for p in ("n2", "n3"))
    assert skipped >= 30  # the rounds that fell on a write's tick were skipped


def test_batches_are_bounded_by_entry_count_and_bytes() -> None:
    net = Network(seed=1, append_entries_max=3, append_bytes_max=2200)
    net.elect("n1")
    net.isolate("n3")
    for i in range(12):
        net.propose("n1", "x" * 1000 if i % 2 else i)
    net.deliver()
    net.heal()
    net.sent.clear()
    net.tick_and_deliver(10)  # the stalled pipeline to n3 falls back to probing
    batches = [m.entries for m in net.sent if isinstance(m, AppendEntries) and m.dst == "n3"]
    assert batches and max(len(b) for b in batches) <= 3
    big = [b for b in batches if sum(isinstance(e.data, str) for e in b) >= 2]
    assert not big  # two 1000-byte values plus overhead exceed 2200 bytes
    assert net.nodes["n3"].last_index == net.nodes["n1"].last_index


def test_rejection_in_replicate_mode_falls_back_to_probe() -> None:
    net = Network(seed=1)
    leader = net.elect("n1")
    net.deliver()
    pr = leader.progress_of("n2")
    assert pr is not None and pr.state is ProgressState.REPLICATE
    leader.step(
        AppendEntriesResp(
            src="n2", dst="n1", term=leader.term, success=False, match_index=0, conflict_index=1
        )
    )
    assert pr.state is ProgressState.PROBE


def test_heartbeats_go_to_every_follower_each_heartbeat_ticks() -> None:
    net = Network(seed=1, heartbeat_ticks=3)
    leader = net.elect("n1")
    net.deliver()
    for tick in range(1, 7):
        leader.tick()
        rd = leader.ready()
        beats = [m for m in rd.messages if isinstance(m, AppendEntries)]
        if tick % 3:
            assert beats == []
        else:
            assert sorted(m.dst for m in beats) == ["n2", "n3"]
            assert all(not m.entries and m.leader_commit == leader.commit_index for m in beats)


def test_entries_from_an_unknown_sender_with_a_stale_term_are_answered_with_our_term() -> None:
    node = follower(extend_log([], [1]), term=4)
    entry = make_entry(node.hash_at(1) or "", 2, 2, EntryType.CLIENT_CMD, None)
    node.step(
        AppendEntries(
            src="n1",
            dst="n2",
            term=2,
            leader_id="n1",
            prev_log_index=1,
            prev_log_term=1,
            prev_log_hash=node.hash_at(1) or "",
            entries=[entry],
            leader_commit=0,
        )
    )
    (resp,) = node.ready().messages
    assert isinstance(resp, AppendEntriesResp) and resp.term == 4 and not resp.success
    assert node.last_index == 1 and node.role is Role.FOLLOWER


def test_messages_from_unknown_senders_or_for_other_nodes_are_dropped_gracefully() -> None:
    net = Network(seed=1)
    leader = net.elect("n1")
    net.deliver()
    before = (leader.term, leader.commit_index, leader.role)
    leader.step(
        AppendEntriesResp(src="n9", dst="n1", term=leader.term, success=True, match_index=99)
    )
    leader.step(
        AppendEntriesResp(src="n2", dst="n7", term=leader.term, success=True, match_index=99)
    )
    assert (leader.term, leader.commit_index, leader.role) == before
    assert leader.progress_of("n9") is None
