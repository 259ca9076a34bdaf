"""Watch fan-out: events/s delivered to many watchers while the cluster takes writes at
about half its capacity, and what those watchers cost the writes, in the same run.

    PYTHONPATH=src python -m bench.watch_fanout [--watchers 100] [--seconds 5] [--rounds 2]

Three measurements, all ratios within one run (the machine is shared; absolute rates
drift, same-run ratios much less):

1. **Apply cost** (in-process, no cluster): committed entries applied per second by a
   ``ReplicatedKV`` with and without a change history attached: the write path's cost of
   keeping the history when nobody watches.
2. **Capacity**: pipelined puts (``--inflight`` outstanding) against a 3-node cluster,
   with 0 watchers and with ``--watchers`` watchers connected (spread over the nodes).
3. **Fan-out at half capacity**: puts paced at 50 % of the 0-watcher capacity, with 0
   and with ``--watchers`` watchers; reports the write rate achieved, the events/s the
   watchers received in total, and whether every watcher received every change.

Watchers run in a separate process (``multiprocessing``) so their client-side CPU is
not charged to the writer's event loop; both still share the machine with the nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from resonetics.client import AsyncClient
from resonetics.localcluster import LocalCluster
from resonetics.machine.changes import attach_history
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.entry import GENESIS, EntryType, make_entry

WARM_UP_S = 1.0
INFLIGHT_PER_CLIENT = 64
PREFIX = "fan/"


# --- 1. apply cost -----------------------------------------------------------------------
def apply_rate(entries: int, with_history: bool) -> float:
    """Entries applied per second by one replica (history attached or not)."""
    replicated = ReplicatedKV()
    if with_history:
        attach_history(replicated)
    prev, log = GENESIS.hash, []
    for i in range(1, entries + 1):
        data = {
            "client_id": "c",
            "request_id": f"r{i}",
            "op": "kv_set",
            "args": {"k": f"k{i % 1000}", "v": {"n": i, "s": "x" * 32}},
            "ts": 0,
        }
        entry = make_entry(prev, 1, i, EntryType.CLIENT_CMD, data)
        log.append(entry)
        prev = entry.hash
    started = time.perf_counter()
    for entry in log:
        replicated.apply(entry)
    return entries / (time.perf_counter() - started)


# --- watchers (their own process) --------------------------------------------------------
def _watcher_process(
    addresses: list[str], count: int, ready: MpEvent, stop: MpEvent, out: Any
) -> None:
    asyncio.run(_watch_all(addresses, count, ready, stop, out))


async def _watch_all(
    addresses: list[str], count: int, ready: MpEvent, stop: MpEvent, out: Any
) -> None:
    received = [0] * count
    last = [0] * count
    clients = [
        AsyncClient(addresses[i % len(addresses) :] + addresses[: i % len(addresses)], timeout=30)
        for i in range(count)
    ]
    streams = [await c.watch(PREFIX).start() for c in clients]

    errors: list[str] = []

    async def consume(i: int) -> None:
        try:
            async for event in streams[i]:
                received[i] += 1
                last[i] = event.index
        except Exception as exc:  # reported, not hidden: the bench says how many failed
            errors.append(repr(exc))

    tasks = [asyncio.create_task(consume(i)) for i in range(count)]
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # let the last events arrive
    # The counts leave first: closing 100 streams on a loaded machine may take a while.
    out.put(
        {
            "received": list(received),
            "resumes": sum(s.resumes for s in streams),
            "errors": errors[:3],
        }
    )
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in streams:
        await s.aclose()
    for c in clients:
        await c.close()


class Watchers:
    """``count`` watchers on ``PREFIX`` in a child process, started and stopped around a load."""

    def __init__(self, addresses: list[str], count: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.stop, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(
            target=_watcher_process, args=(addresses, count, self.ready, self.stop, self.out)
        )
        self.proc.start()
        if not self.ready.wait(120):
            raise RuntimeError("watchers did not start")

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        try:
            result: dict[str, Any] = self.out.get(timeout=300)
        finally:
            self.proc.join(30)
            if self.proc.is_alive():
                self.proc.terminate()
        return result


# --- writers -----------------------------------------------------------------------------
async def puts(addresses: list[str], inflight: int, seconds: float, rate: float | None) -> int:
    """Puts under ``PREFIX`` for ``seconds`` after a warm-up; paced at ``rate``/s when
    given, else as fast as ``inflight`` outstanding allow. Returns puts acknowledged in
    the measured window (the caller divides)."""
    done, counting = 0, False
    stop_at = time.monotonic() + WARM_UP_S + seconds
    interval = None if rate is None else inflight / rate

    async def worker(client: AsyncClient, w: int) -> None:
        nonlocal done
        i = 0
        next_at = time.monotonic()
        while time.monotonic() < stop_at:
            await client.put(f"{PREFIX}{w}-{i % 100}", i)
            i += 1
            if counting:
                done += 1
            if interval is not None:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    clients = [
        AsyncClient(addresses, timeout=30) for _ in range(max(1, inflight // INFLIGHT_PER_CLIENT))
    ]
    tasks = [asyncio.create_task(worker(clients[w % len(clients)], w)) for w in range(inflight)]
    await asyncio.sleep(WARM_UP_S)
    counting = True
    await asyncio.gather(*tasks)
    for c in clients:
        await c.close()
    return done


def _phase(
    cluster: LocalCluster, watchers: int, inflight: int, seconds: float, rate: float | None
) -> dict[str, Any]:
    group = Watchers(cluster.addresses, watchers) if watchers else None
    done = asyncio.run(puts(cluster.addresses, inflight, seconds, rate))
    writes_per_s = done / seconds
    if group is None:
        return {"writes_per_s": writes_per_s}
    result = group.finish()
    received = result["received"]
    # Watchers count from the start of the warm-up; the drain after adds no writes.
    return {
        "writes_per_s": writes_per_s,
        "events_per_s": sum(received) / (WARM_UP_S + seconds),
        "min_received": min(received),
        "max_received": max(received),
        "resumes": result["resumes"],
        "errors": result["errors"],
    }


def _capacity(src: str | None, inflight: int, seconds: float) -> float:
    """Pipelined-put capacity of a fresh 3-node cluster running ``src`` (None: these sources)."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = src
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cluster = LocalCluster(Path(tmp) / "data", size=3, log_level="warning")
            cluster.start()
            try:
                cluster.wait_until_settled(timeout_s=60)
                return asyncio.run(puts(cluster.addresses, inflight, seconds, None)) / seconds
            finally:
                cluster.stop()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _baseline(opts: argparse.Namespace) -> None:
    """Write capacity with 0 watchers: these sources against ``--baseline-src``, alternating."""
    mine: list[float] = []
    base: list[float] = []
    for r in range(opts.rounds):
        # ABBA: whichever runs second in a pair meets the first one's disk writeback.
        if r % 2 == 0:
            base.append(_capacity(opts.baseline_src, opts.inflight, opts.seconds))
            mine.append(_capacity(None, opts.inflight, opts.seconds))
        else:
            mine.append(_capacity(None, opts.inflight, opts.seconds))
            base.append(_capacity(opts.baseline_src, opts.inflight, opts.seconds))
        print(f"baseline round {r + 1}: {base[-1]:.0f}/s baseline, {mine[-1]:.0f}/s these")
    ratio = statistics.median(mine) / statistics.median(base)
    print(f"0 watchers: capacity these/baseline = {ratio:.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--apply-entries", type=int, default=100_000)
    parser.add_argument(
        "--baseline-src",
        default=None,
        help="Also measure capacity (0 watchers) of a cluster running the sources at this "
        "path (e.g. a checkout without change history), alternating with this one.",
    )
    opts = parser.parse_args(argv)
    if opts.baseline_src:
        _baseline(opts)

    without = [apply_rate(opts.apply_entries, False) for _ in range(3)]
    with_h = [apply_rate(opts.apply_entries, True) for _ in range(3)]
    print(
        f"apply: {statistics.median(without):.0f} entries/s without history, "
        f"{statistics.median(with_h):.0f}/s with (ratio "
        f"{statistics.median(with_h) / statistics.median(without):.3f})",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "data", size=3, log_level="warning")
        cluster.start()
        try:
            cluster.wait_until_settled(timeout_s=60)
            for r in range(opts.rounds):
                cap0 = _phase(cluster, 0, opts.inflight, opts.seconds, None)["writes_per_s"]
                capw = _phase(cluster, opts.watchers, opts.inflight, opts.seconds, None)
                half = cap0 / 2
                paced0 = _phase(cluster, 0, opts.inflight, opts.seconds, half)
                pacedw = _phase(cluster, opts.watchers, opts.inflight, opts.seconds, half)
                row = {
                    "capacity_0": cap0,
                    "capacity_w": capw["writes_per_s"],
                    "half": half,
                    "paced_0": paced0["writes_per_s"],
                    "paced_w": pacedw["writes_per_s"],
                    "events_per_s": pacedw["events_per_s"],
                    "min_received": pacedw["min_received"],
                    "max_received": pacedw["max_received"],
                    "resumes": pacedw["resumes"] + capw["resumes"],
                }
                rows.append(row)
                print(
                    f"round {r + 1}: capacity {cap0:.0f}/s with 0 watchers, "
                    f"{row['capacity_w']:.0f}/s with {opts.watchers} "
                    f"(ratio {row['capacity_w'] / cap0:.2f}); paced at {half:.0f}/s: "
                    f"{row['paced_0']:.0f}/s with 0, {row['paced_w']:.0f}/s with "
                    f"{opts.watchers} watchers receiving {row['events_per_s']:.0f} events/s "
                    f"(each got {row['min_received']}..{row['max_received']}; "
                    f"resumes {row['resumes']}; errors {pacedw['errors']})",
                    flush=True,
                )
        finally:
            cluster.stop()
    ratio = statistics.median(r["capacity_w"] / r["capacity_0"] for r in rows)
    events = statistics.median(r["events_per_s"] for r in rows)
    print(
        f"median: write capacity with {opts.watchers} watchers / without = {ratio:.2f}; "
        f"{events:.0f} events/s delivered at ~50 % load"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
