"""Command throughput of a served machine against ``kv_set``, at the same load.

Not a test: run ``python -m bench.machine_bench [--inflight 256] [--seconds 4] [--rounds 2]``.
For each setting it starts a fresh local 3-node cluster, keeps ``inflight`` commands
outstanding through ``AsyncClient``s (one per 64 in flight) for ``seconds`` after a
1 s warm-up, and reports commands per second. Settings alternate within one invocation,
so their ratio to ``kv`` is the figure to quote:

* ``kv``: the key-value store, ``put`` (``kv_set``);
* ``object``: ``resonetics.machine.structures:Counter`` (a ``ReplicatedObject``), ``incr``;
* ``statemachine``: ``examples/counter.py`` (a hand-written ``StateMachine``), ``incr``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster

WARM_UP_S = 1.0
INFLIGHT_PER_CLIENT = 64
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SETTINGS = {
    "kv": [],
    "object": ["--machine", "resonetics.machine.structures:Counter"],
    "statemachine": ["--machine", "counter:make"],
}


async def pipelined(addresses: list[str], setting: str, inflight: int, seconds: float) -> float:
    done = 0
    counting = False
    stop_at = time.monotonic() + WARM_UP_S + seconds

    async def worker(client: AsyncClient, w: int) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < stop_at:
            if setting == "kv":
                await client.put(f"w{w}-{i % 100}", i)
            else:
                await client.call("incr", by=1)
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


def run(setting: str, inflight: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "data", size=3, extra_args=SETTINGS[setting])
        with cluster:
            cluster.wait_for_leader(timeout_s=60)
            return asyncio.run(pipelined(cluster.addresses, setting, inflight, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per setting")
    args = parser.parse_args()
    paths = [str(EXAMPLES), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)  # nodes import counter from examples/
    results: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):
        for setting, runs in results.items():
            runs.append(run(setting, args.inflight, args.seconds))
    best = {s: max(runs) for s, runs in results.items()}
    for setting, runs in results.items():
        print(
            f"inflight={args.inflight} {setting}: {best[setting]:.0f} cmd/s "
            f"(ratio to kv {best[setting] / best['kv']:.2f}); runs {[round(r) for r in runs]}"
        )


if __name__ == "__main__":
    main()
