"""Reads on real processes: ReadIndex, follower reads, lease reads, stale reads (issue: reads)."""

from __future__ import annotations

import signal
from typing import Any

from resonetics import errors
from resonetics.client import Client
from resonetics.localcluster import LocalCluster


def _follower(cluster: LocalCluster) -> str:
    """A follower that knows the leader (one that does not yet cannot forward a read)."""
    leader, _ = cluster.wait_until_settled()
    return next(n for n in cluster.nodes if n != leader)


def test_linearizable_read_on_a_follower_sees_the_latest_write(cluster3: LocalCluster) -> None:
    follower = _follower(cluster3)
    with (
        Client(cluster3.addresses, timeout=10) as writer,
        Client([cluster3.nodes[follower].address], timeout=10) as reader,
    ):
        for i in range(20):
            writer.put("counter", i)
            # Served by the follower itself (forwarded ReadIndex), never a stale value.
            assert reader.get("counter") == i
        assert reader.leader is None  # it never had to be redirected


def test_lease_read_returns_the_latest_write(cluster3: LocalCluster) -> None:
    with Client(cluster3.addresses, timeout=10) as client:
        for i in range(10):
            client.put("lease-key", i)
            assert client.get("lease-key", consistency="lease") == i


def test_stale_read_says_how_far_behind_it_may_be(cluster3: LocalCluster) -> None:
    follower = _follower(cluster3)
    with Client(cluster3.addresses, timeout=10) as writer:
        receipt = writer.put("s", 1)
    with Client([cluster3.nodes[follower].address], timeout=10) as reader:

        def read_once() -> dict[str, Any] | None:
            result: dict[str, Any] = reader.call("kv_get", {"k": "s", "consistency": "stale"})
            assert result["applied_index"] <= result["commit_index"], result
            # The leader may be briefly unknown (an election on a loaded machine); when it
            # is known, the follower says how long ago it last heard from it.
            assert "leader" in result and "leader_contact_ms" in result, result
            if result["leader"] is not None and result["leader_contact_ms"] is not None:
                assert result["leader_contact_ms"] >= 0, result
            return result if result["applied_index"] >= receipt.index else None

        result = cluster3.wait_until(f"{follower} to apply index {receipt.index}", read_once)
    # Once the follower has applied the write's index, its stale read must include it.
    assert result["found"] is True and result["value"] == 1, result


def test_a_deposed_leader_serves_no_stale_linearizable_read(cluster3: LocalCluster) -> None:
    """Raft §8: an old leader that was paused must not answer from its old state."""
    old_leader, _ = cluster3.wait_for_leader()
    with Client(cluster3.addresses, timeout=10) as client:
        client.put("x", "old")
    cluster3.signal_node(old_leader, signal.SIGSTOP)
    try:
        cluster3.wait_for_leader(exclude={old_leader})
        with Client(
            [a for n, a in ((n, x.address) for n, x in cluster3.nodes.items()) if n != old_leader],
            timeout=10,
        ) as client:
            client.put("x", "new")
    finally:
        cluster3.signal_node(old_leader, signal.SIGCONT)
    with Client([cluster3.nodes[old_leader].address], timeout=5) as stale_client:
        for consistency in ("linearizable", "lease"):
            try:
                value = stale_client.get("x", consistency=consistency)
            except (errors.Timeout, errors.Unavailable, errors.NotLeader):
                continue  # refusing is fine; answering "old" is not
            assert value == "new", f"{consistency} read returned {value!r} from a deposed leader"
