"""Runs the whole benchmark: each system in turn, every workload and concurrency, side by side.

Systems run one after another on the same machine in one invocation (never
two clusters at once, so they do not share the two cores). A system that
fails to start or dies mid-run is recorded in ``Report.failures`` and the run
goes on with the others.
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from bench.adapters import SystemFailed, Target, etcd_grpc, open_adapter, starter
from bench.loadgen import RawRun, connections_for, run_async, run_load, run_point_in_processes
from bench.results import Point, Report
from bench.workload import KEYSPACE_KEYS, Workload, key_name, make_value

#: Requests in flight while preloading the key space before reads.
PRELOAD_CONCURRENCY = 32


@dataclass(frozen=True)
class BenchConfig:
    systems: list[str]
    workloads: list[Workload]
    concurrency: list[int]
    duration_s: float
    warmup_s: float
    procs: int
    out_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "systems": self.systems,
            "workloads": list(self.workloads),
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "procs": self.procs,
        }


def machine_info() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        # Other work on the machine moves every figure; it is recorded, not controlled.
        "loadavg_start": list(os.getloadavg()),
    }


def measure(target: Target, workload: Workload, n: int, config: BenchConfig) -> RawRun:
    """One point: by the Go generator for etcd over gRPC, else by ``bench/loadgen.py``
    in this process or split over ``config.procs`` worker processes."""
    if target.generator == "etcd_load":
        return etcd_grpc.measure(target, workload, n, config.duration_s, config.warmup_s)
    if config.procs > 1 and n > 1:
        args = (target, workload, config.duration_s, config.warmup_s)
        return run_point_in_processes(_child, args, n, config.procs)
    coro = run_load(
        lambda: open_adapter(target),
        workload,
        n,
        config.duration_s,
        config.warmup_s,
        inflight_per_connection=target.inflight_per_connection,
        connections=target.connections or None,
    )
    result: RawRun = run_async(coro)
    return result


def _child(
    target: Target, workload: Workload, duration_s: float, warmup_s: float,
    n: int, seed: int, start_at: float,
) -> RawRun:  # fmt: skip
    coro = run_load(
        lambda: open_adapter(target), workload, n, duration_s, warmup_s,
        inflight_per_connection=target.inflight_per_connection, seed=seed, start_at=start_at,
        connections=target.connections or None,
    )  # fmt: skip
    result: RawRun = run_async(coro)
    return result


def preload(target: Target) -> None:
    """Write every key once, so reads find values."""
    if target.generator == "etcd_load":
        etcd_grpc.preload(target)
    else:
        run_async(_preload(target))


async def _preload(target: Target) -> None:
    """Write every key once (each connection one request at a time)."""
    count = connections_for(PRELOAD_CONCURRENCY, 1)
    adapters = [await open_adapter(target) for _ in range(count)]
    value = make_value(random.Random(1))

    async def fill(lane: int) -> None:
        for i in range(lane, KEYSPACE_KEYS, count):
            await adapters[lane].write(key_name(i), value)

    try:
        await asyncio.gather(*(fill(lane) for lane in range(count)))
    finally:
        for adapter in adapters:
            await adapter.close()


def run_system(
    name: str, config: BenchConfig, report: Report, workdir: Path, progress: Progress, task: Any
) -> None:
    running = starter(name)(workdir)
    try:
        report.durability[name] = running.durability
        report.notes[name] = running.notes
        if any(w != "write" for w in config.workloads):
            preload(running.target)
        for workload in config.workloads:
            for n in config.concurrency:
                progress.update(task, description=f"{name} {workload} N={n}")
                try:
                    raw = measure(running.target, workload, n, config)
                except (OSError, ExceptionGroup) as exc:  # e.g. a member died: note it, go on
                    report.failures[f"{name} {workload} N={n}"] = f"{type(exc).__name__}: {exc}"
                else:
                    report.points.append(Point.from_raw(name, workload, n, raw))
                progress.advance(task)
    finally:
        running.stop()


def run_bench(config: BenchConfig, console: Console) -> Report:
    """Measure every system; return the report (failures included, never raised)."""
    report = Report(config=config.to_dict(), machine=machine_info())
    cells = len(config.workloads) * len(config.concurrency)
    with (
        tempfile.TemporaryDirectory(prefix="resonetics-bench-") as tmp,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task("benchmark", total=cells * len(config.systems))
        for name in config.systems:
            done_before = len(report.points)
            try:
                run_system(name, config, report, Path(tmp), progress, task)
            except (SystemFailed, OSError, ExceptionGroup) as exc:
                report.failures[name] = f"{type(exc).__name__}: {exc}"
                console.print(f"[red]{name} failed:[/red] {exc}")
                progress.advance(task, cells - (len(report.points) - done_before))
    report.machine["loadavg_end"] = list(os.getloadavg())
    return report


__all__ = ["BenchConfig", "machine_info", "measure", "run_bench", "run_system"]
