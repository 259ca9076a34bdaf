"""The replicated counter: Resonetics (three embedded ``Node``s) against PySyncObj, same run.

    pip install 'resonetics[bench]'     # or: pip install 'pysyncobj>=0.3.12,<0.4'
    PYTHONPATH=src:examples python -m bench.counter_vs_pysyncobj [--inflight 256] [--seconds 5]

Both sides are three processes on loopback and the same counter: ours is
``examples/embedded_counter.py`` (a program embedding a ``resonetics.Node`` in thread
mode, serving ``examples/counter.py``), theirs ``bench/pso_node.py``'s ``@replicated
incr`` (PySyncObj's default config, ``appendEntriesUseBatch=True``). This process
drives each with ``inflight`` increments outstanding: ours through ``AsyncClient``s
(``call("incr", by=1)``: a sequenced session, exactly once), theirs over pipelined
connections to the leader's line front end (the ``pysyncobj`` bench adapter). Rounds
alternate (ours, theirs, ours, ...) so drift in the machine's load hits both alike;
the medians and their ratio are printed, with every round.

Not like for like, on purpose (it is what each gives a user): Resonetics fsyncs every
batch before acknowledging, deduplicates retries and keeps a hash-chained history;
PySyncObj keeps its log in memory and never fsyncs, and a retried call is applied again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.adapters import pysyncobj as pso
from bench.adapters.base import RequestFailed, Target
from bench.machine_ratio import WARM_UP_S, _incr, pipelined
from resonetics.client import AsyncClient
from resonetics.localcluster import free_ports

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONNECTIONS_PSO = 4
READY_TIMEOUT_S = 60.0


def _start_embedded(root: Path) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Three embedded_counter.py programs; returns them and their client addresses."""
    ports = free_ports(6)
    peers = ",".join(f"n{i + 1}=127.0.0.1:{ports[i]}" for i in range(3))
    clients = [f"127.0.0.1:{ports[3 + i]}" for i in range(3)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), *filter(None, [env.get("PYTHONPATH")])])
    procs = []
    for i in range(3):
        cmd = [sys.executable, str(EXAMPLES / "embedded_counter.py"), "--id", f"n{i + 1}"]
        cmd += [
            "--peers",
            peers,
            "--clients",
            ",".join(f"n{j + 1}={a}" for j, a in enumerate(clients)),
        ]
        cmd += ["--data-dir", str(root / "data"), "--tick-ms", "25"]
        log = (root / f"n{i + 1}.log").open("ab")
        procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log, env=env))
    return procs, clients


def _stop_embedded(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.stdin is not None:
            try:
                proc.stdin.write(b"quit\n")
                proc.stdin.close()
            except OSError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _until_served(addresses: list[str]) -> None:
    """One increment answered (a leader elected, every path warm), within a deadline."""
    async with AsyncClient(addresses, timeout=READY_TIMEOUT_S) as client:
        await client.call("value")


def measure_resonetics(root: Path, inflight: int, seconds: float) -> float:
    procs, clients = _start_embedded(root)
    try:
        asyncio.run(_until_served(clients))
        return asyncio.run(pipelined(clients, inflight, seconds, _incr))
    finally:
        _stop_embedded(procs)


async def _pso_pipelined(front: str, inflight: int, seconds: float) -> float:
    adapters = [
        await pso.PySyncObjAdapter.open(Target("pysyncobj", front))
        for _ in range(min(CONNECTIONS_PSO, inflight))
    ]
    done = 0
    counting = False
    stop_at = time.monotonic() + WARM_UP_S + seconds

    async def worker(adapter: pso.PySyncObjAdapter) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            try:
                await adapter.call("I 1")
            except RequestFailed:
                continue  # e.g. a proposal dropped: not counted, as a client would retry
            if counting:
                done += 1

    tasks = [asyncio.create_task(worker(adapters[w % len(adapters)])) for w in range(inflight)]
    await asyncio.sleep(WARM_UP_S)
    counting, started = True, time.monotonic()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    for adapter in adapters:
        await adapter.close()
    return done / elapsed


def measure_pysyncobj(root: Path, inflight: int, seconds: float) -> float:
    system = pso.start(root, batch=True)
    try:
        return asyncio.run(_pso_pipelined(system.target.address, inflight, seconds))
    finally:
        system.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inflight", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args(argv)
    ours: list[float] = []
    theirs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(opts.rounds):
            (root / f"res{r}").mkdir()
            ours.append(measure_resonetics(root / f"res{r}", opts.inflight, opts.seconds))
            theirs.append(measure_pysyncobj(root / f"pso{r}", opts.inflight, opts.seconds))
            print(
                f"round {r + 1}: resonetics {ours[-1]:.0f}/s, pysyncobj {theirs[-1]:.0f}/s",
                flush=True,
            )
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(
        f"counter incr, 3 nodes, {opts.inflight} in flight: "
        f"resonetics {statistics.median(ours):.0f}/s (fsync, exactly once), "
        f"pysyncobj {statistics.median(theirs):.0f}/s (in memory, no fsync), "
        f"ratio resonetics/pysyncobj {ratio:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
