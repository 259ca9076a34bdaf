"""The metrics registry without processes: round-trip timing and the collector's names."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from resonetics.server import metrics as metrics_module
from resonetics.server.metrics import NodeMetrics, PeerRoundTrips


def test_round_trip_is_timed_from_the_first_unanswered_send() -> None:
    seen: list[tuple[str, float]] = []
    trips = PeerRoundTrips(lambda peer, s: seen.append((peer, s)))
    trips.sent("n2")
    trips.sent("n2")  # pipelined: the clock started at the first
    trips.answered("n2")
    trips.answered("n2")  # no send outstanding: nothing observed
    assert [peer for peer, _ in seen] == ["n2"]


def test_a_peer_that_was_down_is_not_recorded_as_one_huge_round_trip(monkeypatch: Any) -> None:
    seen: list[float] = []
    clock = iter([0.0, metrics_module.ROUND_TRIP_MAX_S + 5])
    monkeypatch.setattr(metrics_module.time, "perf_counter", lambda: next(clock))
    trips = PeerRoundTrips(lambda peer, s: seen.append(s))
    trips.sent("n3")
    trips.answered("n3")
    assert seen == []


def _status() -> dict[str, Any]:
    return {
        "node": "n1",
        "cluster_id": "c" * 32,
        "role": "leader",
        "term": 3,
        "leader": "n1",
        "commit_index": 10,
        "applied_index": 9,
        "last_index": 11,
        "voters": ["n1", "n2", "n3"],
        "learners": [],
        "snapshot": {
            "index": 0,
            "bytes": 0,
            "seconds": 0.0,
            "taken": 0,
            "installed": 0,
            "log_first_index": 1,
        },
        "last_contact_s": {"n2": 0.01},
        "peers_connected": {"n2": True, "n3": False},
        "clients": {
            "open": 2,
            "not_yet_served": 0,
            "input_bytes_held": 0,
            "closed_by_node": {"idle": 1},
            "rate_limited": 4,
        },
        "peer_auth": {
            "refused_links": {"bad proof": 1},
            "dropped_messages": {},
            "peer_messages_on_client_port": 2,
        },
        "stats": {
            "fsyncs": 5,
            "entries_persisted": 11,
            "entries_applied": 8,
            "entries_applied_on_ack": 6,
            "messages_sent": 30,
            "write_seconds": 0.01,
            "refused": {"bad signature": 1},
        },
        "handler_errors": 0,
        "loop": {"stalls": 2, "worst_stall_ms": 180, "stall_threshold_ms": 100},
        "gc": {
            "collections": [40, 3, 1],
            "seconds": 0.25,
            "longest_ms": 90.0,
            "thresholds": [700, 10, 10],
        },
    }


def test_collector_reads_the_status_report_with_prometheus_names() -> None:
    metrics = NodeMetrics(_status, lambda: {"denied": 3, "http_requests": {"200": 7}})
    metrics.note_proposal("OK")
    metrics.fsync.observe(0.002)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert values[("resonetics_role", (("role", "leader"),))] == 1.0
    assert values[("resonetics_role", (("role", "follower"),))] == 0.0
    assert values[("resonetics_commit_index", ())] == 10
    assert values[("resonetics_entries_applied_on_ack_total", ())] == 6
    assert values[("resonetics_proposals_total", (("outcome", "OK"),))] == 1
    assert values[("resonetics_client_requests_refused_total", (("reason", "unauthorized"),))] == 3
    assert values[("resonetics_client_requests_refused_total", (("reason", "rate_limited"),))] == 4
    assert values[("resonetics_peer_connected", (("peer", "n3"),))] == 0.0
    assert values[("resonetics_fsync_seconds_count", ())] == 1
    assert values[("resonetics_http_requests_total", (("code", "200"),))] == 7
    assert values[("resonetics_loop_stalls_total", ())] == 2
    assert values[("resonetics_gc_collections_total", (("generation", "2"),))] == 1
    assert values[("resonetics_gc_collections_total", (("generation", "0"),))] == 40
    assert values[("resonetics_gc_seconds_total", ())] == 0.25


def test_two_nodes_in_one_process_have_separate_registries() -> None:
    a = NodeMetrics(_status, lambda: {})
    b = NodeMetrics(_status, lambda: {})
    a.fsync.observe(1.0)
    assert b"resonetics_fsync_seconds_count 0.0" in b.exposition()
    assert b"resonetics_fsync_seconds_count 1.0" in a.exposition()
