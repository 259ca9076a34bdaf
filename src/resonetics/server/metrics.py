"""Prometheus metrics for one node (``GET /metrics`` on the HTTP port, docs/http.md).

Theory of operation
-------------------
Each node owns its own ``CollectorRegistry`` (never prometheus-client's global
one): two nodes in one process (tests, embedders) must not share or clash.

Most series are *read at scrape time* by ``StatusCollector`` from the same
report the ``status`` op answers with (``server/status.py``): role, term,
indexes, snapshot figures, peer links, client door counters and every refusal
counter. Nothing is counted twice and nothing costs the write path until
someone scrapes.

Only what has no counter elsewhere is observed as it happens, cheaply:

- ``resonetics_fsync_seconds`` (histogram): each log fsync, timed on the disk
  thread by the driver's ``observe_fsync`` hook (prometheus-client's histograms
  take a lock, so the disk thread may observe);
- ``resonetics_apply_entry_seconds`` (histogram): applying one committed entry
  to the state machine (a batch entry holds many commands);
- ``resonetics_peer_append_round_trip_seconds{peer}`` (histogram): from a
  leader's AppendEntries to that follower's next answer (``PeerRoundTrips``);
  it includes the follower's fsync when the message carried entries;
- ``resonetics_proposals_total{outcome}``: the answer code of every write the
  node accepted from a client (``note_proposal``), a plain ``Counter`` read at scrape.

Without an HTTP listener the node builds no ``NodeMetrics`` and none of the
hooks run: metrics cost nothing unless they are served.
"""

from __future__ import annotations

import datetime
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from resonetics import __version__
from resonetics.raft.ready import Role

#: Buckets for disk and apply latencies, seconds (50 µs .. 2.5 s).
LATENCY_BUCKETS_S = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
#: Peers whose round trips are tracked at once (a bound on the label set).
PEERS_TRACKED_MAX = 64
#: A "round trip" longer than this is a peer that was down, not a latency: not observed (s).
ROUND_TRIP_MAX_S = 10.0

#: The ``status`` report of one node (``server/status.py``'s ``node_status``).
StatusSource = Callable[[], dict[str, Any]]


class NodeMetrics:
    """The registry of one node, its write-path histograms and its scrape-time collector."""

    def __init__(self, status: StatusSource, extra: Callable[[], dict[str, Any]]) -> None:
        """``status``: the node's status report; ``extra``: counters it does not carry
        (``{"proposals": Counter, "denied": int, "http_requests": Counter}``)."""
        self.registry = CollectorRegistry(auto_describe=False)
        self.fsync = Histogram(
            "resonetics_fsync_seconds",
            "Seconds one log fsync took (group commit: one per batch of entries).",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.apply = Histogram(
            "resonetics_apply_entry_seconds",
            "Seconds applying one committed entry to the state machine took.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.peer_rtt = Histogram(
            "resonetics_peer_append_round_trip_seconds",
            "Seconds from a leader's AppendEntries to the follower's next answer "
            "(includes the follower's fsync when entries were carried).",
            ["peer"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        #: Answer code of every client write this node accepted -> how many.
        self.proposals: Counter[str] = Counter()
        self._rtt_by_peer: dict[str, Histogram] = {}
        self.round_trips = PeerRoundTrips(self.observe_round_trip)
        self.registry.register(StatusCollector(status, lambda: {**extra(), **self._own()}))
        ProcessCollector(registry=self.registry)

    def _own(self) -> dict[str, Any]:
        return {"proposals": self.proposals}

    def observe_round_trip(self, peer: str, seconds: float) -> None:
        child = self._rtt_by_peer.get(peer)
        if child is None:  # labels() costs a lock and a tuple: looked up once per peer
            child = self._rtt_by_peer[peer] = self.peer_rtt.labels(peer)
        child.observe(seconds)

    def note_proposal(self, code: str) -> None:
        self.proposals[code] += 1

    def exposition(self) -> bytes:
        """The text format (version 0.0.4) of every series, collected now."""
        return generate_latest(self.registry)


class PeerRoundTrips:
    """Leader -> follower round trips, one outstanding AppendEntries per peer.

    ``sent(peer)`` when an AppendEntries leaves (only the first since the last
    answer starts the clock: pipelined sends would otherwise shorten it);
    ``answered(peer)`` on that peer's AppendEntriesResp observes the time taken (unless
    it is over ``ROUND_TRIP_MAX_S``: the peer was down, and the first answer after its
    return would otherwise be recorded as one huge round trip).
    """

    def __init__(self, observe: Callable[[str, float], None]) -> None:
        self._observe = observe
        self._since: dict[str, float] = {}

    def sent(self, peer: str) -> None:
        if peer not in self._since and len(self._since) < PEERS_TRACKED_MAX:
            self._since[peer] = time.perf_counter()

    def answered(self, peer: str) -> None:
        started = self._since.pop(peer, None)
        if started is not None:
            seconds = time.perf_counter() - started
            if seconds <= ROUND_TRIP_MAX_S:
                self._observe(peer, seconds)


class StatusCollector(Collector):
    """Series read from the node's status report when Prometheus scrapes."""

    def __init__(self, status: StatusSource, extra: Callable[[], dict[str, Any]]) -> None:
        self._status = status
        self._extra = extra

    def describe(self) -> Iterable[Metric]:
        return []  # built fresh at every collect; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        s = self._status()
        extra = self._extra()
        yield from _identity(s)
        yield from _raft(s)
        yield from _snapshots(s)
        yield from _peers(s)
        yield from _clients(s, extra)
        yield from _refusals(s, extra)
        yield from _tls(s)


def _tls(s: dict[str, Any]) -> Iterator[Metric]:
    """Expiry times as Unix timestamps, the Prometheus way: alert on ``X - time() < 7d``."""
    tls = s.get("tls")
    if not tls:
        return
    expires = datetime.datetime.fromisoformat(tls["certificate_expires"])
    yield _gauge(
        "resonetics_tls_certificate_expiry_timestamp_seconds",
        "When this node's TLS certificate expires (its notAfter), Unix time.",
        expires.timestamp(),
    )
    if tls.get("crl_next_update"):
        next_update = datetime.datetime.fromisoformat(tls["crl_next_update"])
        yield _gauge(
            "resonetics_tls_crl_next_update_timestamp_seconds",
            "When the revocation list (--tls-crl) must be renewed by (its nextUpdate), Unix "
            "time: past it, every handshake is refused.",
            next_update.timestamp(),
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, Any],
) -> Metric:
    family = kind(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], float(value))
    return family


def _identity(s: dict[str, Any]) -> Iterator[Metric]:
    info = InfoMetricFamily("resonetics_node", "This node: its id, cluster and version.")
    info.add_metric([], {"node": s["node"], "cluster_id": s["cluster_id"], "version": __version__})
    yield info


def _raft(s: dict[str, Any]) -> Iterator[Metric]:
    role = GaugeMetricFamily(
        "resonetics_role", "1 for the role this node is in, 0 for the others.", labels=["role"]
    )
    for r in Role:
        role.add_metric([str(r)], 1.0 if s["role"] == str(r) else 0.0)
    yield role
    yield _gauge("resonetics_term", "The node's current Raft term.", s["term"])
    yield _gauge(
        "resonetics_leader_known",
        "1 when this node knows a leader, else 0.",
        s["leader"] is not None,
    )
    yield _gauge("resonetics_commit_index", "Highest log index known committed.", s["commit_index"])
    yield _gauge("resonetics_applied_index", "Highest log index applied.", s["applied_index"])
    yield _gauge(
        "resonetics_last_log_index", "Index of the last entry in the log.", s["last_index"]
    )
    yield _labelled(
        GaugeMetricFamily,
        "resonetics_members",
        "Members of the configuration this node follows, by kind.",
        "kind",
        {"voter": len(s["voters"]), "learner": len(s["learners"])},
    )
    stats = s["stats"]
    yield _counter("resonetics_fsyncs_total", "Log fsyncs.", stats["fsyncs"])
    yield _counter(
        "resonetics_entries_persisted_total",
        "Entries written to the log.",
        stats["entries_persisted"],
    )
    yield _counter(
        "resonetics_entries_applied_total", "Client entries applied.", stats["entries_applied"]
    )
    yield _counter(
        "resonetics_entries_applied_on_ack_total",
        "Client entries a leader applied on the ack that committed them.",
        stats["entries_applied_on_ack"],
    )
    yield _counter(
        "resonetics_peer_messages_sent_total", "Raft messages sent.", stats["messages_sent"]
    )
    yield _counter(
        "resonetics_disk_write_seconds_total",
        "Seconds spent in log writes and fsyncs.",
        stats["write_seconds"],
    )


def _snapshots(s: dict[str, Any]) -> Iterator[Metric]:
    snap = s["snapshot"]
    yield _gauge(
        "resonetics_snapshot_index", "Last index the latest snapshot covers.", snap["index"]
    )
    yield _gauge("resonetics_snapshot_size_bytes", "Size of the latest snapshot.", snap["bytes"])
    yield _gauge(
        "resonetics_snapshot_duration_seconds",
        "Seconds the latest snapshot this node took needed, from start to saved.",
        snap.get("seconds", 0.0),
    )
    yield _counter("resonetics_snapshots_taken_total", "Snapshots this node took.", snap["taken"])
    yield _counter(
        "resonetics_snapshots_installed_total",
        "Snapshots this node installed from a leader.",
        snap["installed"],
    )
    yield _gauge(
        "resonetics_log_first_index", "First index still in the log.", snap["log_first_index"]
    )


def _peers(s: dict[str, Any]) -> Iterator[Metric]:
    yield _labelled(
        GaugeMetricFamily,
        "resonetics_peer_connected",
        "1 while the outbound link to a peer is connected.",
        "peer",
        {p: 1.0 if up else 0.0 for p, up in s["peers_connected"].items()},
    )
    yield _labelled(
        GaugeMetricFamily,
        "resonetics_peer_last_contact_seconds",
        "Seconds since a message from a peer was last stepped.",
        "peer",
        s["last_contact_s"],
    )


def _clients(s: dict[str, Any], extra: dict[str, Any]) -> Iterator[Metric]:
    clients = s["clients"]
    yield _gauge("resonetics_client_connections", "Open client connections.", clients["open"])
    yield _gauge(
        "resonetics_client_connections_unserved",
        "Open client connections that have not sent a valid request yet.",
        clients["not_yet_served"],
    )
    yield _gauge(
        "resonetics_client_input_held_bytes",
        "Unfinished client input held in memory.",
        clients["input_bytes_held"],
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_client_connections_closed",
        "Client connections the node closed, by reason.",
        "reason",
        clients["closed_by_node"],
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_proposals",
        "Client writes this node accepted, by the code they were answered with.",
        "outcome",
        dict(extra["proposals"]),
    )
    yield _gauge(
        "resonetics_http_connections",
        "Open connections to the HTTP port.",
        extra.get("http_connections", 0),
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_http_connections_refused",
        "HTTP connections refused or closed at the door (caps, first request too slow).",
        "reason",
        dict(extra.get("http_refused", {})),
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_http_requests",
        "HTTP requests answered, by status code.",
        "code",
        dict(extra.get("http_requests", {})),
    )


def _refusals(s: dict[str, Any], extra: dict[str, Any]) -> Iterator[Metric]:
    refused_requests = {
        "rate_limited": s["clients"]["rate_limited"],
        "unauthorized": extra.get("denied", 0),
        "peer_message_on_client_port": s["peer_auth"]["peer_messages_on_client_port"],
    }
    yield _labelled(
        CounterMetricFamily,
        "resonetics_client_requests_refused",
        "Client requests refused before dispatch, by reason (rate_limited: answered "
        "RATE_LIMITED; unauthorized: FORBIDDEN, UNAUTHENTICATED or a failed Auth).",
        "reason",
        refused_requests,
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_client_reading_paused",
        "Times the node stopped reading a client connection that spent its line budget "
        "('line rate') or its budget for lines that were not requests ('junk rate').",
        "reason",
        s["clients"].get("reading_paused", {}),
    )
    yield _counter(
        "resonetics_rate_limited_requests_total",
        "Client requests answered RATE_LIMITED (client port and HTTP).",
        s["clients"]["rate_limited"],
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_peer_links_refused",
        "Inbound peer links refused at the handshake, by reason.",
        "reason",
        s["peer_auth"]["refused_links"],
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_peer_messages_dropped",
        "Messages on authenticated peer links dropped at the gate, by reason.",
        "reason",
        s["peer_auth"]["dropped_messages"],
    )
    yield _labelled(
        CounterMetricFamily,
        "resonetics_peer_messages_refused",
        "Peer messages and snapshots the driver refused, by reason.",
        "reason",
        s["stats"]["refused"],
    )
    yield _counter(
        "resonetics_handler_errors_total",
        "Unexpected exceptions in client handlers (each closed its connection).",
        s["handler_errors"],
    )
    yield _counter(
        "resonetics_loop_stalls_total",
        "Times the event loop could not run for over a third of the shortest election "
        "timeout (server/loop_lag.py).",
        s["loop"]["stalls"],
    )
    collector = s["gc"]
    yield _labelled(
        CounterMetricFamily,
        "resonetics_gc_collections",
        "Cyclic garbage collections of the node's process, by generation (2: full).",
        "generation",
        {str(gen): n for gen, n in enumerate(collector["collections"])},
    )
    yield _counter(
        "resonetics_gc_seconds_total",
        "Seconds the node's process spent in cyclic garbage collection (loop stopped).",
        collector["seconds"],
    )


__all__ = ["LATENCY_BUCKETS_S", "NodeMetrics", "PeerRoundTrips", "StatusCollector"]
