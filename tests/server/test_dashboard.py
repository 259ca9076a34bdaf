"""The dashboard's pieces without a cluster: the event ring, the samples, the lag."""

from __future__ import annotations

from typing import Any

from resonetics.raft.membership import Membership
from resonetics.raft.ready import Role
from resonetics.runtime.snapshots import SnapshotStats
from resonetics.server.dashboard import Samples, _add_lag, percentile
from resonetics.server.events import CoreView, Event, EventRing, NodeWatch, emit
from resonetics.wire import codes


def test_event_ring_is_bounded_and_numbers_events_for_after() -> None:
    ring = EventRing(size=3)
    for i in range(5):
        emit(Event("leader_changed", {"new": f"n{i}"}), ring=ring)
    assert ring.seq == 5
    assert [e["seq"] for e in ring.since(0)] == [3, 4, 5]  # the oldest two forgotten
    assert ring.first_seq == 3
    assert [e["fields"]["new"] for e in ring.since(4)] == ["n4"]
    assert ring.since(5) == []
    assert EventRing().first_seq == 1


def test_node_watch_keeps_what_it_logs_in_its_ring() -> None:
    three = Membership(voters=("n1", "n2", "n3"))
    ring = EventRing()
    watch = NodeWatch("n1", CoreView(1, Role.FOLLOWER, "n2", three, (0, {}), SnapshotStats()), ring)
    logged = watch.observe(CoreView(2, Role.FOLLOWER, "n3", three, (0, {}), SnapshotStats()))
    assert [e["event"] for e in ring.since(0)] == [e.name for e in logged] == ["leader_changed"]
    assert ring.since(0)[0]["fields"] == {"old": "n2", "new": "n3", "term": 2}


def test_samples_rate_and_latency_percentiles_per_interval() -> None:
    samples = Samples(size=2)
    samples.take(100.0, commit_index=10, term=1)
    for ms in range(1, 101):
        samples.note_write(codes.OK, ms / 1000)
    samples.note_write(codes.NOT_LEADER, 9.0)  # not a served write: not counted
    s = samples.take(102.0, commit_index=110, term=1)
    assert s["commits_per_s"] == 50.0 and s["writes_per_s"] == 50.0
    assert s["p50_ms"] == 50.0 and s["p99_ms"] == 99.0
    quiet = samples.take(103.0, commit_index=110, term=1)
    assert quiet["writes_per_s"] == 0.0 and quiet["p50_ms"] is None
    assert len(samples.samples) == 2  # bounded


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0


def test_lag_is_behind_the_highest_term_leader_and_none_when_unknown() -> None:
    members: list[dict[str, Any]] = [
        {"id": "a", "reachable": True, "role": "leader", "term": 3, "commit_index": 50},
        {"id": "b", "reachable": True, "role": "follower", "term": 3, "applied_index": 42},
        {"id": "c", "reachable": True, "role": "leader", "term": 2, "commit_index": 40},
        {"id": "d", "reachable": False},
    ]
    members[0]["applied_index"] = 50
    members[2]["applied_index"] = 40
    _add_lag(members)
    assert [m["lag"] for m in members] == [0, 8, 10, None]
    leaderless: list[dict[str, Any]] = [{"reachable": True, "role": "follower", "term": "x"}]
    _add_lag(leaderless)
    assert leaderless[0]["lag"] is None
