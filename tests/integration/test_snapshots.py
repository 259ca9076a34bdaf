"""Compaction and InstallSnapshot with real ``resonetics serve`` processes.

A follower that misses thousands of writes (paused with SIGSTOP, or restarted
from an empty folder) can only catch up through InstallSnapshot, because the
leader compacts its log every ``--snapshot-entries`` entries. Afterwards every
node must hold the same applied index and hash, and every folder must pass
``verify``.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.verify import verify_path

SNAPSHOT_ENTRIES = 500
#: Writes per round of ``write_until_compacted_past``.
WRITES = 2_000
#: Rounds after which the leader must have compacted past the lagging node.
ROUNDS_MAX = 30
#: Writes in flight at once (pipelined on one connection). Few: writes that arrive
#: together share one log entry, and what must grow here is the number of entries
#: (the leader keeps 1,000 behind each snapshot before its log starts past a node).
PIPELINE = 4
CATCH_UP_S = 40.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(
        tmp_path / "data",
        size=3,
        tick_ms=20,
        extra_args=["--snapshot-entries", str(SNAPSHOT_ENTRIES)],
    )
    c.start()
    try:
        c.wait_for_leader(timeout_s=60)
        yield c
    finally:
        c.stop()
        for node_id in c.nodes:
            log = (c.data_dir / f"{node_id}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


async def _write_many(addresses: list[str], count: int, prefix: str) -> None:
    gate = asyncio.Semaphore(PIPELINE)
    async with AsyncClient(addresses, timeout=30.0) as client:

        async def one(i: int) -> None:
            async with gate:
                await client.put(f"{prefix}{i % 2000}", i)

        await asyncio.gather(*(one(i) for i in range(count)))


def write_many(cluster: LocalCluster, count: int, prefix: str) -> None:
    asyncio.run(_write_many(cluster.addresses, count, prefix))


def write_until_compacted_past(
    cluster: LocalCluster, index: int, prefix: str, lagging: str
) -> None:
    """Write until the log of every node but ``lagging`` starts after ``index``: a node
    that has only that much can then catch up through InstallSnapshot alone, whichever
    node leads when it comes back. (Not only the leader's log: a real election on a
    loaded machine can hand leadership to a node that compacted a little later, which
    then repairs the lagging node with AppendEntries. Writes that arrive together share
    an entry, so the number of writes this takes depends on the batching.)"""
    firsts: dict[str, int | None] = {}
    for round_ in range(ROUNDS_MAX):
        write_many(cluster, WRITES, f"{prefix}{round_}-")
        others = [n for n, node in cluster.nodes.items() if n != lagging and node.running]
        statuses = {n: cluster.status(n) for n in others}
        firsts = {
            n: st["snapshot"]["log_first_index"] if st else None for n, st in statuses.items()
        }
        if all(first is not None and first > index + 1 for first in firsts.values()):
            return
    raise AssertionError(
        f"the logs were not compacted past {index} after {ROUNDS_MAX} rounds: first indexes "
        f"{firsts}\n{cluster.describe()}"
    )


def follower_of(cluster: LocalCluster) -> str:
    leader, _ = cluster.wait_for_leader(timeout_s=30)
    return next(n for n in cluster.nodes if n != leader)


def wait_converged(cluster: LocalCluster, node_id: str) -> dict[str, dict[str, Any]]:
    """Until every node reports the same applied index and hash; returns the statuses."""

    def converged() -> dict[str, dict[str, Any]] | None:
        statuses = {n: st for n in cluster.nodes if (st := cluster.status(n)) is not None}
        applied = {(st["applied_index"], st["applied_hash"]) for st in statuses.values()}
        return statuses if len(statuses) == len(cluster.nodes) and len(applied) == 1 else None

    return cluster.wait_until(
        f"{node_id} to catch up (every node at one applied index and hash)", converged, CATCH_UP_S
    )


def check_caught_up_by_snapshot(cluster: LocalCluster, node_id: str) -> None:
    statuses = wait_converged(cluster, node_id)
    st = statuses[node_id]
    assert st["snapshot"]["installed"] >= 1, f"{node_id} caught up without an install: {statuses}"
    taken = {n: s["snapshot"]["taken"] for n, s in statuses.items() if n != node_id}
    assert all(t >= 1 for t in taken.values()), f"snapshots taken: {taken}"
    assert st["applied_index"] >= SNAPSHOT_ENTRIES, st


def check_verify(cluster: LocalCluster) -> None:
    cluster.stop()
    report = verify_path(OsFileSystem(), str(cluster.data_dir))
    assert report.ok, report
    assert len(report.nodes) == 3
    assert all(n.snapshot is not None for n in report.nodes)


def test_paused_follower_catches_up_through_install_snapshot(cluster: LocalCluster) -> None:
    lagging = follower_of(cluster)
    cluster.signal_node(lagging, signal.SIGSTOP)
    try:
        # Read after the pause: the paused node holds at most what the leader has now
        # (its own status, read before, could already be behind what it holds).
        leader, _ = cluster.wait_for_leader(timeout_s=30, exclude={lagging})
        at_pause = cluster.status(leader)
        assert at_pause is not None
        write_until_compacted_past(cluster, at_pause["last_index"], "a", lagging)
    finally:
        cluster.signal_node(lagging, signal.SIGCONT)
    check_caught_up_by_snapshot(cluster, lagging)
    check_verify(cluster)


def test_empty_data_dir_catches_up_through_install_snapshot(cluster: LocalCluster) -> None:
    write_many(cluster, 500, "warm")
    lagging = follower_of(cluster)
    cluster.stop_node(lagging)
    shutil.rmtree(cluster.data_dir / lagging)
    write_until_compacted_past(cluster, 0, "b", lagging)
    cluster.start_node(lagging)
    check_caught_up_by_snapshot(cluster, lagging)
    check_verify(cluster)


def test_a_follower_within_the_kept_entries_catches_up_by_log_after_the_others_restart(
    tmp_path: Path,
) -> None:
    """``--log-retain-entries``: the entries kept behind each snapshot are on disk, so a
    follower that lags by fewer is sent entries, not a snapshot, even when every other
    node restarted (from its files) while it was down."""
    cluster = LocalCluster(
        tmp_path / "data",
        size=3,
        tick_ms=20,
        extra_args=["--snapshot-entries", "100", "--log-retain-entries", "300"],
    )
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        write_many(cluster, 2_500, "warm")
        lagging = follower_of(cluster)
        at_stop = cluster.status(lagging)
        assert at_stop is not None
        cluster.stop_node(lagging)
        # Past the next snapshot of each other node (every 100 entries), but fewer
        # entries than they keep behind it (300).
        behind = at_stop["last_index"]
        leader, _ = cluster.wait_for_leader(timeout_s=30, exclude={lagging})
        while (st := cluster.status(leader)) is None or st["last_index"] < behind + 150:
            write_many(cluster, 100, f"while-down-{st['last_index'] if st else 0}-")
        others = [n for n in cluster.nodes if n != lagging]
        for node_id in others:
            cluster.stop_node(node_id)
        for node_id in others:
            cluster.start_node(node_id)
        cluster.wait_for_leader(timeout_s=60)
        for node_id in others:
            st = cluster.status(node_id)
            # Its snapshot is past what the lagging node holds; what the restart kept
            # from its files starts before it.
            assert st is not None and st["snapshot"]["index"] > behind, (behind, st)
            assert st["snapshot"]["log_first_index"] <= behind, (behind, st)
        cluster.start_node(lagging)
        write_many(cluster, 20, "after")
        statuses = wait_converged(cluster, lagging)
        assert statuses[lagging]["snapshot"]["installed"] == 0, statuses[lagging]
    finally:
        cluster.stop()
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"
    report = verify_path(OsFileSystem(), str(cluster.data_dir))
    assert report.ok, report
