"""The README's main job: a real 3-node cluster doing real work, narrated."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from pathlib import Path

from rich.console import Console

from resonetics.client import Client, Receipt
from resonetics.commands.status import fetch_status, status_table
from resonetics.errors import ResoneticsError
from resonetics.localcluster import LocalCluster

WRITERS = 8


def _write_batch(addresses: list[str], prefix: str, count: int, worker: int) -> dict[str, Receipt]:
    acked: dict[str, Receipt] = {}
    with Client(addresses, timeout=15) as client:
        for i in range(worker, count, WRITERS):
            key = f"{prefix}/{i:05d}"
            # A write that raised was not acknowledged: the demo only promises what was.
            with contextlib.suppress(ResoneticsError):
                acked[key] = client.put(key, {"n": i, "by": worker})
    return acked


def write_concurrently(addresses: list[str], prefix: str, count: int) -> dict[str, Receipt]:
    acked: dict[str, Receipt] = {}
    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(_write_batch, addresses, prefix, count, w) for w in range(WRITERS)]
        for future in futures:
            acked.update(future.result())
    return acked


def run_demo(
    console: Console, data_dir: Path, writes: int, *, base_port: int | None = None
) -> bool:
    cluster = LocalCluster(data_dir, size=3, base_port=base_port)
    console.rule("[bold]Resonetics demo: a 3-node cluster on loopback")
    cluster.start()
    try:
        return _narrate(console, cluster, writes)
    finally:
        cluster.stop()
        console.print(f"cluster stopped; node logs and data were in {data_dir}")


def _narrate(console: Console, cluster: LocalCluster, writes: int) -> bool:
    addresses = cluster.addresses
    for node in cluster.nodes.values():
        console.print(
            f"started {node.node_id} on {node.address} (pid {node.process.pid if node.process else '?'})"
        )
    t0 = time.monotonic()
    leader, _ = cluster.wait_for_leader()
    console.print(f"[green]{leader} elected leader[/green] after {time.monotonic() - t0:.2f}s")

    t0 = time.monotonic()
    acked = write_concurrently(addresses, "before", writes)
    elapsed = time.monotonic() - t0
    console.print(
        f"{len(acked)}/{writes} writes acknowledged by {WRITERS} concurrent clients in "
        f"{elapsed:.2f}s ({len(acked) / elapsed:.0f} writes/s, fsync on)"
    )
    sample = next(iter(sorted(acked)))
    console.print(f"receipt of {sample}: {acked[sample]}")

    console.print(f"[yellow]killing the leader {leader} with SIGKILL[/yellow]")
    cluster.kill_node(leader)
    t0 = time.monotonic()
    new_leader, st = cluster.wait_for_leader(exclude={leader})
    console.print(
        f"[green]{new_leader} took over in term {st['term']}[/green] after {time.monotonic() - t0:.2f}s"
    )
    more = write_concurrently(addresses, "after", writes // 2)
    console.print(f"{len(more)} more writes acknowledged with {leader} down")
    acked.update(more)

    console.print(f"restarting {leader} on its data dir")
    cluster.start_node(leader)
    lost = _check_all_present(addresses, acked)
    _wait_converged(cluster, timeout_s=20)
    console.print(status_table(fetch_status(addresses, timeout=2.0), console.width))
    if lost:
        console.print(f"[red]{len(lost)} acknowledged writes are missing: {lost[:5]}[/red]")
        return False
    console.print(
        f"[bold green]all {len(acked)} acknowledged writes are present after the failover[/bold green]"
    )
    return True


def _check_all_present(addresses: list[str], acked: dict[str, Receipt]) -> list[str]:
    with Client(addresses, timeout=15) as client:
        found = dict(client.scan("", limit=10_000))
    return sorted(key for key in acked if key not in found)


def _wait_converged(cluster: LocalCluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [cluster.status(n) for n in cluster.nodes]
        applied = {s["applied_index"] for s in statuses if s is not None}
        if len(applied) == 1 and None not in statuses:
            return
        time.sleep(0.2)
