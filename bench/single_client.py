"""CPU per request of one ``AsyncClient`` against the raw pipelined generator (not a test).

``python -m bench.single_client [--driver client|raw] [--op write|read] [--inflight 256]
[--requests 40000] [--reps 1] [-- serve flags]`` starts a local 3-node cluster, sends a fixed
number of requests with N in flight, and prints the rate and, from ``/proc/<pid>/stat``, the
CPU time per request of the leader, of the two followers together and of this process (the
generator). On a shared machine the rate moves with the load; CPU per request moves much less,
so an A/B between two trees compares those. ``--driver raw`` is the bench's ``resonetics``
adapter (raw protocol, 4 pipelined connections), ``client`` one ``AsyncClient``. The leader's
``status`` counts ``RATE_LIMITED`` answers (``clients.rate_limited``): a connection that hits
its request budget shows there, not as an error (the library backs off and retries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bench.adapters.base import Target
from bench.adapters.resonetics import ResoneticsAdapter
from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
#: Connections the raw driver pipelines over (as the bench's ``resonetics`` row at N >= 4).
RAW_CONNECTIONS = 4


class Running(NamedTuple):
    """A started local cluster: its leader, the client addresses (leader first), the pids."""

    cluster: LocalCluster
    leader_id: str
    addresses: list[str]
    pids: dict[str, int]


@contextlib.contextmanager
def local_cluster(
    prefix: str, serve_flags: list[str], log_level: str = "warning"
) -> Iterator[Running]:
    """A 3-node cluster on loopback (25 ms ticks) in a fresh temp dir, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as work:  # gone after: GBs at 1 M keys
        cluster = LocalCluster(
            Path(work) / "data", size=3, tick_ms=25, log_level=log_level, extra_args=serve_flags
        )
        cluster.start()
        try:
            leader_id, _ = cluster.wait_for_leader(30)
            leader = cluster.nodes[leader_id]
            addresses = [leader.address] + [a for a in cluster.addresses if a != leader.address]
            pids = {n: node.process.pid for n, node in cluster.nodes.items() if node.process}
            yield Running(cluster, leader_id, addresses, pids)
        finally:
            cluster.stop()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class _Raw:
    """The raw adapters, used round-robin (one request at a time goes to the next)."""

    def __init__(self, adapters: list[ResoneticsAdapter]) -> None:
        self._adapters = adapters
        self._next = 0

    async def put(self, key: str, value: str) -> None:
        self._next += 1
        await self._adapters[self._next % len(self._adapters)].write(key, value)

    async def get(self, key: str) -> None:
        self._next += 1
        await self._adapters[self._next % len(self._adapters)].read(key)

    async def close(self) -> None:
        for adapter in self._adapters:
            await adapter.close()


async def _drive(driver: str, addresses: list[str], op: str, inflight: int, total: int) -> Any:
    if driver == "raw":
        target = Target("resonetics", addresses[0], others=tuple(addresses[1:]))
        conns = [await ResoneticsAdapter.open(target) for _ in range(RAW_CONNECTIONS)]
        client: Any = _Raw(conns)
    else:
        client = AsyncClient(addresses, timeout=60)
    await client.put("warm", "x")
    value = "v" * 100

    async def lane(first: int) -> None:
        for i in range(first, total, inflight):
            if op == "write":
                await client.put(f"k{i % 1000}", value)
            else:
                await client.get(f"k{i % 1000}")

    started, cpu0 = time.perf_counter(), os.times()
    await asyncio.gather(*(lane(i) for i in range(inflight)))
    wall, cpu1 = time.perf_counter() - started, os.times()
    await client.close()
    return wall, cpu1.user + cpu1.system - cpu0.user - cpu0.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--driver", choices=("client", "raw"), default="client")
    parser.add_argument("--op", choices=("write", "read"), default="write")
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("serve_flags", nargs="*", help="extra `resonetics serve` flags")
    args = parser.parse_args()
    import uvloop

    with local_cluster("single-client-", args.serve_flags) as (cluster, leader_id, addresses, pids):
        for _ in range(args.reps):
            before = {n: cpu_s(p) for n, p in pids.items()}
            run = _drive(args.driver, addresses, args.op, args.inflight, args.requests)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                wall, own = runner.run(run)
            after = {n: cpu_s(p) for n, p in pids.items()}
            per = 1e6 / args.requests
            followers = sum(after[n] - before[n] for n in pids if n != leader_id)
            status = cluster.status(leader_id) or {}
            limited = status.get("clients", {}).get("rate_limited")
            print(
                f"{args.driver} {args.op} N={args.inflight}: {args.requests / wall:,.0f}/s; "
                f"CPU per request: leader {(after[leader_id] - before[leader_id]) * per:.0f} us, "
                f"followers {followers * per:.0f} us, generator {own * per:.0f} us; "
                f"rate_limited {limited}; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
