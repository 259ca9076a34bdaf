"""Real processes: a leader's death shows up as events in the survivors' JSON logs,
and ``Client.leader_address`` names the node that answered as leader."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics.client import Client
from resonetics.localcluster import LocalCluster


@pytest.fixture
def json_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        tmp_path / "data",
        size=3,
        tick_ms=20,
        extra_args=["--log-format", "json", "--snapshot-entries", "20"],
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()


def _events(cluster: LocalCluster, node_id: str) -> list[dict[str, Any]]:
    """Every line of the node's log parsed as JSON (a line that is not JSON fails the test)."""
    text = (cluster.data_dir / f"{node_id}.log").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _wait_for_event(
    cluster: LocalCluster, node_id: str, name: str, timeout_s: float = 30.0, **fields: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        for obj in _events(cluster, node_id):
            if obj["event"] == name and all(
                obj.get("event_term" if k == "term" else k) == v for k, v in fields.items()
            ):
                return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"no {name} {fields} in {node_id}'s log")
        time.sleep(0.2)


def test_killing_the_leader_logs_election_won_and_leader_changed_in_the_survivors(
    json_cluster: LocalCluster,
) -> None:
    # Every node follows the first leader before it dies (so each knows whom it lost).
    old, _ = json_cluster.wait_until_settled(timeout_s=60)
    # The first leader's own win is on record, with its votes.
    won = _wait_for_event(json_cluster, old, "election_won")
    assert won["node"] == old and won["level"] == "INFO"
    assert won["votes"].endswith("/3")
    json_cluster.kill_node(old)
    new, status = json_cluster.wait_for_leader(timeout_s=60, exclude={old})
    term = status["term"]
    won = _wait_for_event(json_cluster, new, "election_won", term=term)
    assert int(won["votes"].split("/")[0]) >= 2
    survivors = sorted(set(json_cluster.nodes) - {old})
    for node_id in survivors:
        changed = _wait_for_event(json_cluster, node_id, "leader_changed", new=new, term=term)
        assert changed["old"] == old
        assert {"ts", "level", "logger", "event", "node"} <= set(changed)
        assert changed["logger"] == "resonetics.events"
    # The link to the dead node went down, said once per interval, not per retry.
    downs = [
        e
        for node_id in survivors
        for e in _events(json_cluster, node_id)
        if e["event"] == "peer_link_down" and e["peer"] == old
    ]
    assert 1 <= len(downs) <= 2 * len(survivors)


def test_leader_address_names_the_node_that_answered_as_leader(
    json_cluster: LocalCluster,
) -> None:
    leader, _ = json_cluster.wait_for_leader(timeout_s=60)
    followers = [n.address for i, n in json_cluster.nodes.items() if i != leader]
    # Dial a follower first: the write is redirected, and the answer comes from the leader.
    with Client([*followers, json_cluster.nodes[leader].address], timeout=20) as client:
        assert client.leader_address is None
        client.status()  # any node answers status: it says nothing of who leads
        assert client.leader_address is None
        client.put("k", "v")
        assert client.leader_address == json_cluster.nodes[leader].address
        assert client.leader == leader
        assert client.get("k", consistency="stale") == "v"
        assert client.leader_address == json_cluster.nodes[leader].address


def test_snapshots_taken_are_logged_with_index_size_and_duration(
    json_cluster: LocalCluster,
) -> None:
    json_cluster.wait_for_leader(timeout_s=60)
    with Client(json_cluster.addresses, timeout=20) as client:
        for i in range(30):
            client.put(f"k{i}", i)
    for node_id in json_cluster.nodes:
        taken = _wait_for_event(json_cluster, node_id, "snapshot_taken")
        assert taken["index"] >= 20
        assert taken["bytes"] > 0
        assert taken["duration_ms"] >= 0


def test_member_remove_logs_the_membership_change_on_every_node_that_applies_it(
    json_cluster: LocalCluster,
) -> None:
    # Every node follows the leader first: a victim whose link from the leader is not up
    # yet (it started last) would be removed without ever hearing the joint configuration,
    # and so could never log its removal.
    leader, _ = json_cluster.wait_until_settled(timeout_s=60)
    victim = next(n for n in sorted(json_cluster.nodes) if n != leader)
    with json_cluster.admin_client(timeout=30) as admin:
        admin.member_remove(victim)
    remaining = sorted(set(json_cluster.nodes) - {victim})
    for node_id in remaining:
        changed = _wait_for_event(
            json_cluster, node_id, "membership_changed", new="voters=" + ",".join(remaining)
        )
        assert victim in changed["old"]
    # The victim sees the joint configuration it is only an outgoing voter of: its removal.
    removed = _wait_for_event(json_cluster, victim, "removed")
    assert victim not in removed["config"].split(";")[0]


def test_async_client_leader_address_names_the_node_that_answered_as_leader(
    json_cluster: LocalCluster,
) -> None:
    import asyncio

    from resonetics.client import AsyncClient

    leader, _ = json_cluster.wait_for_leader(timeout_s=60)
    followers = [n.address for i, n in json_cluster.nodes.items() if i != leader]

    async def scenario() -> tuple[str | None, str | None]:
        async with AsyncClient(followers, timeout=20) as client:
            before = client.leader_address
            await client.put("k", "v")  # sent to a follower first, answered by the leader
            return before, client.leader_address

    before, after = asyncio.run(scenario())
    assert before is None
    assert after == json_cluster.nodes[leader].address
