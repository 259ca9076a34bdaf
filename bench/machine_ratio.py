"""A served machine's command throughput against ``kv_set``, in the same run.

    PYTHONPATH=src:examples python -m bench.machine_ratio [--inflight 256] [--seconds 5]

Starts a 3-node local cluster serving the key-value store and one serving the
counter example (``examples/counter.py``, ``serve --machine counter:make``),
one at a time, and drives each with ``inflight`` commands outstanding through
``AsyncClient``s (one per 64 in flight): ``kv_set`` (``put``) against the first,
``call("incr", by=1)`` against the second. Rounds alternate (kv, counter, kv,
counter, ...) so drift in the machine's load hits both alike; the ratio of the
medians is printed, with every round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster

WARM_UP_S = 1.0
INFLIGHT_PER_CLIENT = 64


async def pipelined(
    addresses: list[str],
    inflight: int,
    seconds: float,
    send: Callable[[AsyncClient, int, int], Awaitable[object]],
) -> float:
    """Commands per second with ``inflight`` outstanding for ``seconds`` (after warm-up)."""
    done = 0
    counting = False
    stop_at = time.monotonic() + WARM_UP_S + seconds

    async def worker(client: AsyncClient, w: int) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            await send(client, w, i)
            i += 1
            if counting:
                done += 1

    clients = [
        AsyncClient(addresses, timeout=30) for _ in range(max(1, inflight // INFLIGHT_PER_CLIENT))
    ]
    tasks = [asyncio.create_task(worker(clients[w % len(clients)], w)) for w in range(inflight)]
    await asyncio.sleep(WARM_UP_S)
    counting, started = True, time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for c in clients:
        await c.close()
    return done / elapsed


async def _kv_set(client: AsyncClient, w: int, i: int) -> object:
    return await client.put(f"w{w}-{i % 100}", i)


async def _incr(client: AsyncClient, w: int, i: int) -> object:
    return await client.call("incr", by=1)


def _measure(root: Path, name: str, extra: list[str], inflight: int, seconds: float) -> float:
    cluster = LocalCluster(root / name, size=3, extra_args=extra, log_level="warning")
    cluster.start()
    try:
        cluster.wait_until_settled(timeout_s=60)
        send = _incr if extra else _kv_set
        return asyncio.run(pipelined(cluster.addresses, inflight, seconds, send))
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args(argv)
    kv: list[float] = []
    counter: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(opts.rounds):
            kv.append(_measure(root, f"kv{r}", [], opts.inflight, opts.seconds))
            counter.append(
                _measure(
                    root, f"counter{r}", ["--machine", "counter:make"], opts.inflight, opts.seconds
                )
            )
            print(f"round {r + 1}: kv_set {kv[-1]:.0f}/s, incr {counter[-1]:.0f}/s", flush=True)
    ratio = statistics.median(counter) / statistics.median(kv)
    print(
        f"{opts.inflight} in flight: kv_set {statistics.median(kv):.0f}/s, "
        f"counter incr {statistics.median(counter):.0f}/s, ratio {ratio:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
