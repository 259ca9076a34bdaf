"""The HTTP port on real processes: metrics, health, readiness, the key-value API, bad input."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from resonetics import limits
from resonetics.localcluster import LocalCluster
from tests.integration.http_helpers import Reply, call


def _no_traceback(cluster: LocalCluster) -> None:
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


@pytest.fixture
def http_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20, http=True)
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _no_traceback(cluster)


def _http(cluster: LocalCluster, node_id: str) -> str:
    address = cluster.nodes[node_id].http_address
    assert address is not None
    return address


def _metrics(address: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    reply = call(address, "GET", "/metrics")
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _value(
    metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    for got, value in metrics[name]:
        if all(got.get(k) == v for k, v in labels.items()):
            return value
    raise AssertionError(f"{name}{labels} not in {metrics.get(name)}")


def _leader_http(cluster: LocalCluster) -> tuple[str, str]:
    leader, _ = cluster.wait_until_settled(timeout_s=30)
    return leader, _http(cluster, leader)


def test_metrics_parse_as_prometheus_text_and_move_with_writes(http_cluster: LocalCluster) -> None:
    leader, address = _leader_http(http_cluster)
    before = _metrics(address)
    for name in (
        "resonetics_term",
        "resonetics_commit_index",
        "resonetics_applied_index",
        "resonetics_last_log_index",
        "resonetics_fsync_seconds_count",
        "resonetics_apply_entry_seconds_count",
        "resonetics_snapshot_size_bytes",
        "resonetics_snapshot_duration_seconds",
        "resonetics_client_connections",
        "resonetics_rate_limited_requests_total",
        "process_cpu_seconds_total",
        "resonetics_http_connections",
    ):
        assert name in before, f"{name} missing from /metrics"
    assert _value(before, "resonetics_role", role="leader") == 1.0
    for i in range(20):
        assert call(address, "PUT", f"/v1/kv/m{i}", i).status == 200
    after = _metrics(address)
    assert (
        _value(after, "resonetics_commit_index") >= _value(before, "resonetics_commit_index") + 20
    )
    assert (
        _value(after, "resonetics_applied_index") >= _value(before, "resonetics_applied_index") + 20
    )
    assert _value(after, "resonetics_fsync_seconds_count") > _value(
        before, "resonetics_fsync_seconds_count"
    )
    assert _value(after, "resonetics_proposals_total", outcome="OK") >= 20
    assert _value(after, "resonetics_http_requests_total", code="200") >= 20
    rtts = [v for labels, v in after["resonetics_peer_append_round_trip_seconds_count"]]
    assert rtts and min(rtts) > 0, "the leader timed round trips to both followers"
    follower = next(n for n in http_cluster.nodes if n != leader)
    follower_metrics = _metrics(_http(http_cluster, follower))
    assert _value(follower_metrics, "resonetics_role", role="follower") == 1.0


def test_every_resonetics_series_follows_prometheus_naming(http_cluster: LocalCluster) -> None:
    _, address = _leader_http(http_cluster)
    families = list(text_string_to_metric_families(call(address, "GET", "/metrics").text))
    ours = [f for f in families if f.name.startswith("resonetics_")]
    assert len(ours) >= 30
    for family in ours:
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        assert not family.name.endswith("_ms"), f"{family.name}: use seconds"
    assert all(f.name.startswith(("resonetics_", "process_", "python_")) for f in families)


def test_ready_turns_503_on_a_follower_cut_from_its_leader_and_200_after_reelection(
    http_cluster: LocalCluster,
) -> None:
    leader, _ = _leader_http(http_cluster)
    follower, other = (n for n in http_cluster.nodes if n != leader)
    address = _http(http_cluster, follower)
    http_cluster.wait_until("follower ready", lambda: call(address, "GET", "/ready").status == 200)
    assert call(address, "GET", "/health").json["ok"] is True
    # Kill the leader and the other follower: the one left can elect nobody.
    http_cluster.kill_node(leader)
    http_cluster.kill_node(other)
    refused: Reply = http_cluster.wait_until(
        "follower unready",
        lambda: r if (r := call(address, "GET", "/ready")).status == 503 else None,
    )
    assert refused.json["ok"] is False and refused.json["reason"] == "no leader known"
    assert call(address, "GET", "/health").status == 200, "alive, though not ready"
    http_cluster.start_node(other)
    ready = http_cluster.wait_until(
        "ready again after a new election",
        lambda: r if (r := call(address, "GET", "/ready")).status == 200 else None,
        timeout_s=60,
    )
    assert ready.json["leader"] in (follower, other)


def test_kv_api_round_trip_with_cas_and_scan_cursor(http_cluster: LocalCluster) -> None:
    _, address = _leader_http(http_cluster)
    put = call(address, "PUT", "/v1/kv/users/ada", {"name": "Ada"})
    assert put.status == 200 and put.json["receipt"]["index"] > 0
    assert call(address, "GET", "/v1/kv/users/ada").json["value"] == {"name": "Ada"}
    stale = call(address, "GET", "/v1/kv/users/ada?consistency=stale")
    assert stale.status == 200 and stale.json["value"] == {"name": "Ada"}
    assert call(address, "GET", "/v1/kv/users/ada?consistency=lease").status == 200
    # CAS two ways: the query parameter and the POST body.
    failed = call(address, "PUT", "/v1/kv/users/ada?expected=1", 2)
    assert failed.status == 412 and failed.json["code"] == "CAS_FAILED"
    assert failed.json["value"] == {"name": "Ada"}
    swapped = call(
        address, "POST", "/v1/kv/users/ada/cas", {"expected": {"name": "Ada"}, "value": 2}
    )
    assert swapped.status == 200 and swapped.json["swapped"] is True
    absent = call(address, "PUT", "/v1/kv/users/bob?expected=null", "b")
    assert absent.status == 200 and absent.json["swapped"] is True
    # Scan in pages of 2 with the cursor.
    for name in ("cy", "dee", "eve"):
        assert call(address, "PUT", f"/v1/kv/users/{name}", name).status == 200
    keys: list[str] = []
    path = "/v1/kv?prefix=users/&limit=2"
    while True:
        page = call(address, "GET", path).json
        keys += [item["key"] for item in page["items"]]
        if not page["more"]:
            assert page["next"] is None
            break
        path = f"/v1/kv?prefix=users/&limit=2&after={page['next']}"
    assert keys == ["users/ada", "users/bob", "users/cy", "users/dee", "users/eve"]
    deleted = call(address, "DELETE", "/v1/kv/users/ada")
    assert deleted.status == 200 and deleted.json["deleted"] is True
    missing = call(address, "GET", "/v1/kv/users/ada")
    assert missing.status == 404 and missing.json["code"] == "NOT_FOUND"


def test_write_with_the_same_idempotency_key_is_applied_once(http_cluster: LocalCluster) -> None:
    _, address = _leader_http(http_cluster)
    headers = {"Idempotency-Key": "order-17"}
    first = call(address, "PUT", "/v1/kv/once", 1, headers=headers)
    assert first.status == 200 and first.json["dedup"] is False
    again = call(address, "PUT", "/v1/kv/once", 1, headers=headers)
    assert again.status == 200 and again.json["dedup"] is True
    assert again.json["receipt"] == first.json["receipt"], "the first write's result, not a new one"
    other = call(address, "PUT", "/v1/kv/once", 2, headers=headers)
    assert (other.status, other.json["code"]) == (400, "BAD_REQUEST"), "a reused key, another body"
    assert call(address, "GET", "/v1/kv/once").json["value"] == 1


def test_write_on_a_follower_is_redirected_to_the_leader(http_cluster: LocalCluster) -> None:
    leader, leader_address = _leader_http(http_cluster)
    follower = next(n for n in http_cluster.nodes if n != leader)
    reply = call(_http(http_cluster, follower), "PUT", "/v1/kv/redirected?x=1", 5)
    assert reply.status == 307, reply.text
    assert reply.headers["Location"] == f"http://{leader_address}/v1/kv/redirected?x=1"
    assert reply.json["code"] == "NOT_LEADER" and reply.json["leader"] == leader
    # Reads are served by the follower itself (linearizable through ReadIndex).
    assert call(leader_address, "PUT", "/v1/kv/redirected", 5).status == 200
    assert call(_http(http_cluster, follower), "GET", "/v1/kv/redirected").json["value"] == 5


def test_bad_http_input_gets_json_errors_and_the_node_serves_on(http_cluster: LocalCluster) -> None:
    _, address = _leader_http(http_cluster)
    cases = [
        (call(address, "PUT", "/v1/kv/k", raw_body=b"{not json"), 400, "BAD_REQUEST"),
        (call(address, "PUT", "/v1/kv/k", raw_body=b""), 400, "BAD_REQUEST"),
        (call(address, "PATCH", "/v1/kv/k"), 405, "METHOD_NOT_ALLOWED"),
        (call(address, "GET", "/no/such/route"), 404, "NOT_FOUND"),
        (call(address, "GET", "/v1/kv?limit=lots"), 400, "BAD_REQUEST"),
        (call(address, "GET", "/v1/kv?limit=0"), 400, "BAD_REQUEST"),
        (call(address, "GET", "/v1/kv/k?consistency=eventual"), 400, "BAD_REQUEST"),
        (call(address, "PUT", "/v1/kv/" + "k" * 2000, 1), 413, "TOO_LARGE"),
        (call(address, "PUT", "/v1/kv/big", raw_body=b"1" * (4 << 20)), 413, "TOO_LARGE"),
        (call(address, "POST", "/v1/kv/k/cas", {"value": 1}), 400, "BAD_REQUEST"),
        (
            call(address, "PUT", "/v1/kv/k", headers={"Idempotency-Key": "x" * 300}, raw_body=b"1"),
            400,
            "BAD_REQUEST",
        ),
    ]
    for reply, status, code in cases:
        assert (reply.status, reply.json["code"]) == (status, code), reply.text
        assert "Traceback" not in reply.text
    assert "key" in cases[7][0].json["message"], "the field is named as HTTP users know it"
    assert call(address, "GET", "/health").status == 200


def _raw(address: str, data: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_raw_socket_garbage_and_oversized_requests_leave_the_node_serving(
    http_cluster: LocalCluster,
) -> None:
    leader, address = _leader_http(http_cluster)
    garbage = _raw(address, b"\x00\xff\xfe garbage \r\n\r\n" * 50)
    assert garbage.startswith(b"HTTP/1.0 400"), garbage[:200]
    long_line = _raw(address, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert long_line.startswith(b"HTTP/1.0 4"), long_line[:200]
    many_headers = b"".join(b"X-%d: y\r\n" % i for i in range(500))
    headers = _raw(address, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many_headers + b"\r\n")
    assert headers.startswith(b"HTTP/1.0 4"), headers[:200]
    lying = _raw(
        address,
        b"PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n" + b"1" * 1000,
    )
    assert lying.startswith(b"HTTP/1.1 413"), lying[:200]
    assert b'"code":"TOO_LARGE"' in lying
    peer_line = _raw(address, b'{"kind":"AppendEntries","payload":{},"t":0,"v":1}\n')
    assert peer_line.startswith(b"HTTP/1.0 400"), peer_line[:200]
    assert call(address, "GET", "/health").status == 200
    assert call(address, "PUT", "/v1/kv/still", "here").status == 200
    assert http_cluster.nodes[leader].running


def test_rate_limited_client_lines_are_counted_in_metrics(http_cluster: LocalCluster) -> None:
    leader, address = _leader_http(http_cluster)
    host, port = http_cluster.nodes[leader].address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"not a request\n" * 1000)  # far past a new connection's line budget
        paused = http_cluster.wait_until(
            "line-rate pause counted",
            lambda: _paused(_metrics(address), "line rate"),
        )
    assert paused >= 1


def _paused(metrics: dict[str, list[tuple[dict[str, str], float]]], reason: str) -> float | None:
    for labels, value in metrics.get("resonetics_client_reading_paused_total", []):
        if labels.get("reason") == reason and value > 0:
            return value
    return None  # not yet: the family has no sample before the first pause


def test_a_connection_flood_on_the_http_port_is_capped_and_the_node_serves_on(
    http_cluster: LocalCluster,
) -> None:
    """An outsider opens more HTTP connections than the port admits from one address and
    sends nothing: those beyond the cap are answered 503 naming the limit and closed, the
    node stays up, and once the flood is gone the port serves again (metrics count it)."""
    address = _http(http_cluster, "n1")
    host, _, port = address.rpartition(":")
    cap = limits.HTTP_CONNECTIONS_PER_ADDRESS_MAX
    flood = [socket.create_connection((host, int(port)), timeout=10) for _ in range(cap + 8)]
    try:
        # Which 8 are refused depends on the order the node accepted them in, so every
        # socket is watched: a refused one is answered at once; an admitted one hears
        # nothing until the 10 s head deadline, long after this.
        answered: dict[socket.socket, bytes] = {}
        deadline = time.monotonic() + 8
        while len(answered) < 8 and time.monotonic() < deadline:
            waiting = [sock for sock in flood if sock not in answered]
            readable, _, _ = select.select(waiting, [], [], 0.5)
            for sock in readable:
                answered[sock] = sock.makefile("rb").read()  # the answer, then the close
        assert len(answered) == 8, f"{len(answered)} of {cap + 8} connections were answered"
        for raw in answered.values():
            assert raw.startswith(b"HTTP/1.1 503"), raw[:200]
            assert f"{cap} HTTP connections from your address".encode() in raw
        assert http_cluster.exit_codes()["n1"] is None
    finally:
        for sock in flood:
            sock.close()
    deadline = time.monotonic() + 20
    while (reply := _try_health(address)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert reply is not None and reply.status == 200
    counted = _value(
        _metrics(address),
        "resonetics_http_connections_refused_total",
        reason="too many HTTP connections from one address",
    )
    assert counted >= 8


def _try_health(address: str) -> Reply | None:
    try:
        reply = call(address, "GET", "/health")
    except OSError:
        return None
    return reply if reply.status == 200 else None
