"""The load generator: N requests in flight, a warm-up, then a fixed measured window.

Theory of operation
-------------------
``run_load`` opens a few connections (``Adapter`` objects) and starts N worker
tasks spread over them; each worker sends one request, waits for its answer,
and sends the next, so exactly N requests are in flight at all times. A
request counts when it *started* after the warm-up and *finished* before the
window closed; throughput is those requests over the window's length.

The generator must not be the bottleneck, so it reports its own CPU time
(``os.times``, from the window's opening to its close) next to every figure, and ``run_point`` can split the N workers
over several OS processes (``procs``), each with its own event loop, whose
windows are aligned on one wall-clock start time.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Protocol

from bench.workload import OpChooser, Workload, make_value

#: After a failed request a worker pauses this long, so a dead system is not spun on.
ERROR_PAUSE_S = 0.01
#: How long child processes are given to start before the common start time, seconds.
CHILD_START_S = 1.5


class Adapter(Protocol):
    """One connection to one system. Pipelined adapters accept concurrent calls."""

    async def write(self, key: str, value: str) -> None: ...

    async def read(self, key: str) -> None: ...

    async def close(self) -> None: ...


AdapterFactory = Callable[[], Awaitable[Adapter]]


@dataclass(slots=True)
class RawRun:
    """What one load run observed (merged over processes by ``merge``)."""

    ok: int = 0
    errors: int = 0
    latencies_s: list[float] = field(default_factory=list)
    first_error: str | None = None
    cpu_s: float = 0.0
    window_s: float = 0.0

    def merge(self, other: RawRun) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.latencies_s.extend(other.latencies_s)
        self.first_error = self.first_error or other.first_error
        self.cpu_s += other.cpu_s
        self.window_s = max(self.window_s, other.window_s)


def connections_for(concurrency: int, inflight_per_connection: int) -> int:
    """Connections to open: one per request for one-at-a-time protocols, else a few."""
    if inflight_per_connection <= 0:  # pipelined: many requests share a connection
        return max(1, min(concurrency, 4))
    return max(1, math.ceil(concurrency / inflight_per_connection))


async def _worker(
    adapter: Adapter, chooser: OpChooser, value: str, window: tuple[float, float], out: RawRun
) -> None:
    warm_end, end = window
    clock = time.perf_counter
    while True:
        t0 = clock()
        if t0 >= end:
            return
        is_write, key = chooser.next()
        try:
            if is_write:
                await adapter.write(key, value)
            else:
                await adapter.read(key)
        except Exception as exc:  # any failure of the system under test is data, not a crash
            if t0 >= warm_end:
                out.errors += 1
                out.first_error = out.first_error or f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(ERROR_PAUSE_S)
            continue
        t1 = clock()
        if t0 >= warm_end and t1 <= end:
            out.ok += 1
            out.latencies_s.append(t1 - t0)


async def run_load(
    factory: AdapterFactory,
    workload: Workload,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    *,
    inflight_per_connection: int = 0,
    seed: int = 0,
    start_at: float | None = None,
    connections: int | None = None,
) -> RawRun:
    """Keep ``concurrency`` requests in flight; measure ``duration_s`` after ``warmup_s``.

    ``connections`` fixes how many adapters are opened (the library-client row uses
    one); by default ``connections_for`` decides.
    """
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0:
        raise ValueError("concurrency >= 1, duration_s > 0 and warmup_s >= 0 are required")
    count = connections or connections_for(concurrency, inflight_per_connection)
    adapters = [await factory() for _ in range(count)]
    out = RawRun(window_s=duration_s)
    try:
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.time()))
        # CPU is read when the window opens and when it closes (the Go generator does
        # the same), so the warm-up and the stragglers' tail are not charged to it.
        marks: list[float] = []
        loop = asyncio.get_running_loop()
        loop.call_later(warmup_s, lambda: marks.append(_cpu_s()))
        loop.call_later(warmup_s + duration_s, lambda: marks.append(_cpu_s()))
        warm_end = time.perf_counter() + warmup_s
        window = (warm_end, warm_end + duration_s)
        rng = random.Random(seed)
        async with asyncio.TaskGroup() as group:
            for i in range(concurrency):
                chooser = OpChooser(workload, random.Random(rng.random()))
                value = make_value(chooser.rng)
                group.create_task(_worker(adapters[i % len(adapters)], chooser, value, window, out))
        if len(marks) < 2:  # every worker returned before the closing timer fired
            marks.append(_cpu_s())
        out.cpu_s = marks[-1] - marks[0]
    finally:
        for adapter in adapters:
            await adapter.close()
    return out


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def run_async(coro: Awaitable[Any]) -> Any:
    """Run a coroutine on uvloop when installed (the generator's own speed matters)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


def split_concurrency(concurrency: int, procs: int) -> list[int]:
    """Split N in-flight requests over at most ``procs`` processes, as evenly as possible."""
    procs = max(1, min(procs, concurrency))
    base, extra = divmod(concurrency, procs)
    return [base + (1 if i < extra else 0) for i in range(procs)]


def run_point_in_processes(
    child: Callable[..., RawRun], args: tuple[Any, ...], concurrency: int, procs: int
) -> RawRun:
    """Run ``child(*args, share, seed, start_at)`` in ``procs`` processes and merge the results."""
    shares = split_concurrency(concurrency, procs)
    start_at = time.time() + CHILD_START_S
    merged = RawRun()
    with ProcessPoolExecutor(len(shares), mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(child, *args, share, seed, start_at) for seed, share in enumerate(shares)
        ]
        for future in futures:
            merged.merge(future.result())
    return merged


__all__ = [
    "Adapter",
    "AdapterFactory",
    "RawRun",
    "connections_for",
    "run_async",
    "run_load",
    "run_point_in_processes",
    "split_concurrency",
]
