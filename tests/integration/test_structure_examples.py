"""The lock service and job queue examples (ready-made replicated structures) on three
real processes, with a kill -9 of the leader in the middle."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resonetics import errors
from resonetics.client import Client
from resonetics.localcluster import LocalCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import job_queue  # noqa: E402 - examples/ is not a package
import lock_service  # noqa: E402


def _cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str) -> Iterator[LocalCluster]:
    paths = [str(EXAMPLES), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # nodes import the example
    cluster = LocalCluster(tmp_path / "data", size=3, tick_ms=20, extra_args=["--machine", spec])
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        for node_id in cluster.nodes:
            log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
            assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


@pytest.fixture
def lock3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    yield from _cluster(tmp_path, monkeypatch, "lock_service:make")


@pytest.fixture
def queue3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    yield from _cluster(tmp_path, monkeypatch, "job_queue:make")


def test_lock_fencing_token_increases_across_leader_kill(lock3: LocalCluster) -> None:
    leader, _ = lock3.wait_for_leader()
    store = lock_service.FencedStore()
    with Client(lock3.addresses, timeout=20) as client:
        first = lock_service.try_acquire(client, "db", "a", ttl_ms=1_500)
        assert first is not None and store.write(first.token, "a1")
        assert lock_service.try_acquire(client, "db", "b") is None  # held by a
        lock3.kill_node(leader)  # SIGKILL
        lock3.wait_for_leader(exclude={leader})
        second = lock3.wait_until(
            "b acquires db once a's lease has run out in log time",
            lambda: lock_service.try_acquire(client, "db", "b", ttl_ms=60_000),
            60,
        )
        # The new holder's token is larger; the old holder's lease is gone and the
        # resource refuses its late write.
        assert second.token > first.token
        assert lock_service.refresh(client, first) is None
        assert store.write(second.token, "b1")
        assert not store.write(first.token, "a2")
        holder = client.call("holder", name="db")["value"]  # linearizable by default
        assert holder["owner"] == "b" and holder["token"] == second.token
        stale = client.call("holder", name="db", consistency="stale")
        assert "applied_index" in stale  # a query still takes a consistency per call
        lock3.start_node(leader)
        assert lock_service.release(client, second)
    # The example's command line: acquire and release a free lock.
    assert lock_service.main([",".join(lock3.addresses), "db", "c"]) == 0


def _worker(
    client: Client, name: str, total: int, processed: list[Any], stop: threading.Event
) -> tuple[list[int], int]:
    """Work until every job is acknowledged: (ids whose ack counted, acks of unknown fate)."""
    acked: list[int] = []
    unknown = 0
    while not stop.is_set():
        try:
            job_id = job_queue.work_one(client, name, processed.append, visibility_ms=1_000)
        except (errors.Timeout, errors.Unavailable):
            unknown += 1
            continue
        if job_id is not None:
            acked.append(job_id)
        elif client.call("stats")["value"]["acked"] >= total:
            break
    return acked, unknown


def test_queue_acknowledged_jobs_processed_exactly_once_across_leader_kill(
    queue3: LocalCluster,
) -> None:
    total = 30
    leader, _ = queue3.wait_for_leader()
    stop = threading.Event()
    clients = [Client(queue3.addresses, timeout=20) for _ in range(3)]
    processed: list[Any] = []
    try:
        ids = [job_queue.put(clients[0], {"n": n}) for n in range(total)]
        assert ids == list(range(1, total + 1))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(_worker, clients[w], f"w{w}", total, processed, stop) for w in (1, 2)
            ]
            queue3.wait_until(
                "10 jobs acknowledged",
                lambda: clients[0].call("stats")["value"]["acked"] >= 10,
                60,
            )
            queue3.kill_node(leader)
            queue3.wait_for_leader(exclude={leader})
            queue3.wait_until(
                "every job acknowledged",
                lambda: clients[0].call("stats")["value"]["acked"] == total,
                90,
            )
            results = [f.result(timeout=60) for f in futures]
        stats = clients[0].call("stats")["value"]
    finally:
        stop.set()
        for c in clients:
            c.close()
    acked = [job for r in results for job in r[0]]
    unknown = sum(r[1] for r in results)
    # Each job's acknowledgement counted exactly once: no id twice, none beyond the jobs.
    assert len(acked) == len(set(acked)), sorted(acked)
    assert set(acked) <= set(ids) and len(acked) + unknown >= total
    assert stats == {"pending": 0, "taken": 0, "acked": total}
    # Every job's work was done (at least once: a worker may die after the work).
    assert {p["n"] for p in processed} == set(range(total))
    # The example's command line: three more jobs, put and worked off.
    assert job_queue.main([",".join(queue3.addresses), "3"]) == 0
