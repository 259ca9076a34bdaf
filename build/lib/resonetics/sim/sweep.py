"""Many seeds, on one core or several, folded into one summary.

Theory of operation
-------------------
A seed's run depends on nothing but ``(seed, SimOptions)`` (``runner.py``), so
seeds can run in any process in any order. ``run_seeds`` cuts the seed list
into consecutive chunks and hands them to a pool of worker processes (the
``spawn`` start method: a fresh interpreter that imports this module, safe on
every platform and with no state inherited from the parent). Results come back
chunk by chunk *in seed order* (``Pool.imap``), and the summary adds them in
that order, so a sweep with K workers gives exactly the summary of the same
sweep on one worker: same totals, same failed seeds in the same order, same
coverage.

Worker processes freeze the objects their imports made out of the cyclic
collector's view and run it less often (``SWEEP_GC_THRESHOLDS``); a sweep on one
worker runs in the caller's process and leaves its collector alone.

Ctrl-C stops the sweep: the workers ignore SIGINT (the parent alone decides),
the pool is terminated, and the summary of the runs finished so far comes back
with ``interrupted`` set, so the caller can still print it.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from resonetics.sim.mix import mixed
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import RunResult, run_seed

#: Seeds per chunk handed to a worker at most: small enough that the workers finish
#: together and progress is smooth, big enough that the per-chunk IPC is negligible.
SWEEP_CHUNK_SEEDS_MAX = 25

OnResult = Callable[[RunResult, "SweepSummary"], None]


@dataclass(slots=True)
class SweepSummary:
    """Totals over the runs of a sweep, added in seed order."""

    runs: int = 0
    virtual_ms: int = 0
    steps: int = 0
    elections: int = 0
    faults: int = 0
    ops: int = 0
    messages: int = 0
    failed: list[RunResult] = field(default_factory=list)
    #: Coverage key (``RunResult.coverage``) -> runs in which it happened at least once.
    coverage_runs: Counter[str] = field(default_factory=Counter)
    #: Coverage key -> how many times it happened over all runs.
    coverage_events: Counter[str] = field(default_factory=Counter)
    #: The sweep was stopped (Ctrl-C) before every seed ran.
    interrupted: bool = False

    def add(self, result: RunResult) -> None:
        self.runs += 1
        self.virtual_ms += result.virtual_ms
        self.steps += result.steps
        self.elections += result.elections
        self.faults += result.faults
        self.ops += result.ops
        self.messages += result.messages
        for key, count in result.coverage.items():
            self.coverage_runs[key] += 1 if count > 0 else 0
            self.coverage_events[key] += count
        if not result.ok:
            self.failed.append(result)

    def coverage_lines(self) -> list[str]:
        """The coverage table: every key, grouped by area, with its runs and events."""
        if not self.coverage_runs:
            return []
        width = max(len(key) for key in self.coverage_runs)
        lines = [f"coverage over {self.runs} run(s) (runs that saw it / times in all):"]
        for key in sorted(self.coverage_runs, key=_coverage_order):
            runs, events = self.coverage_runs[key], self.coverage_events[key]
            share = f"{100 * runs / self.runs:5.1f}%" if self.runs else "  -  "
            lines.append(f"  {key:<{width}}  {runs:>8} runs {share}  {events:>10}")
        return lines


def _coverage_order(key: str) -> tuple[int, str]:
    areas = ("fault", "role", "snapshot", "membership", "gate drop", "client")
    area = key.split(":", 1)[0]
    return (areas.index(area) if area in areas else len(areas), key)


def resolve_workers(workers: int) -> int:
    """``--workers``: 0 means one per CPU; otherwise the number itself (at least 1)."""
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per CPU) or more, not {workers}")
    return workers or os.cpu_count() or 1


def chunks(seeds: Sequence[int], workers: int) -> list[list[int]]:
    """Consecutive slices of ``seeds``, about four per worker, at most
    ``SWEEP_CHUNK_SEEDS_MAX`` seeds each; concatenated they are ``seeds`` again."""
    size = max(1, min(SWEEP_CHUNK_SEEDS_MAX, len(seeds) // (workers * 4) or 1))
    return [list(seeds[i : i + size]) for i in range(0, len(seeds), size)]


def _run_one(seed: int, options: SimOptions, mix: bool, digest: bool) -> RunResult:
    return run_seed(seed, mixed(options, seed) if mix else options, digest=digest)


def _run_chunk(job: tuple[list[int], SimOptions, bool, bool]) -> list[RunResult]:
    """One worker's share (module level, so a spawned worker can import it)."""
    seeds, options, mix, digest = job
    return [_run_one(seed, options, mix, digest) for seed in seeds]


#: The cyclic collector's thresholds in a sweep's worker processes. A seed makes
#: millions of short-lived objects that reference counting frees; CPython's default
#: first threshold (700 allocations) ran the collector about ten times per seed and
#: the full collections walked every module and class again: 5 % of a worker's time.
#: With the imports frozen out of the collector's view and these thresholds, 2.5 %.
SWEEP_GC_THRESHOLDS = (20_000, 20, 20)


def _init_worker() -> None:
    """A worker process: the parent alone decides on Ctrl-C; the collector tuned for
    a batch of seeds (the worker is the sweep's own process, nobody else's)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SWEEP_GC_THRESHOLDS)


def _results(
    seeds: Sequence[int], options: SimOptions, workers: int, mix: bool, digest: bool
) -> Iterator[RunResult]:
    if workers == 1 or len(seeds) <= 1:
        for seed in seeds:
            yield _run_one(seed, options, mix, digest)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers, initializer=_init_worker)
    try:
        jobs = [(chunk, options, mix, digest) for chunk in chunks(seeds, workers)]
        for batch in pool.imap(_run_chunk, jobs):
            yield from batch
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_seeds(
    seeds: Sequence[int],
    options: SimOptions,
    *,
    workers: int = 1,
    on_result: OnResult | None = None,
    mix: bool = False,
    digest: bool = False,
) -> SweepSummary:
    """Run ``seeds`` on ``workers`` processes (0: one per CPU) and sum them up in seed order.

    ``on_result`` sees each result, in seed order, after it was added (progress
    display). With ``mix`` each seed runs its mode's options (``sim/mix.py``).
    The runs keep no digest unless ``digest`` is set (a sweep compares no runs).
    Ctrl-C returns the summary so far with ``interrupted`` set.
    """
    summary = SweepSummary()
    try:
        for result in _results(seeds, options, resolve_workers(workers), mix, digest):
            summary.add(result)
            if on_result is not None:
                on_result(result, summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


__all__ = [
    "SWEEP_CHUNK_SEEDS_MAX",
    "SweepSummary",
    "chunks",
    "resolve_workers",
    "run_seeds",
]
