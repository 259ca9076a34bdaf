"""One torture run: a real cluster behind proxies, a workload, a nemesis, then the checks.

Theory of operation
-------------------
1. Start one proxy per ordered pair of nodes, then ``resonetics serve``
   processes whose peer lists name those proxies (clients dial real addresses).
2. Run the workload, the monitor and the nemesis together for ``time_s``.
3. Stop the nemesis (it heals everything and restarts what it killed), stop the
   workload, stay quiet for ``settle_s``, read every key once more.
4. Wait until every node reports the same applied index and chain hash, stop
   the cluster gracefully, and verify the data dir offline.
5. Check the history for linearizability; write everything into ``out``.

The run passes only if every check in ``checks.py`` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resonetics import limits
from resonetics.check.history import HistoryRecorder
from resonetics.errors import ResoneticsError
from resonetics.localcluster import LocalCluster
from resonetics.torture.checks import CheckReport, run_checks
from resonetics.torture.monitor import Monitor, fetch_status
from resonetics.torture.nemesis import FAULT_KINDS, Nemesis, NemesisOptions
from resonetics.torture.progress import progress_line
from resonetics.torture.proxy import ProxyMesh
from resonetics.torture.workload import Workload, WorkloadOptions

#: How long the cluster may take to elect its first leader, seconds (a loaded 2-core box).
FIRST_LEADER_TIMEOUT_S = 60.0
#: How long the healed cluster may take to converge on one applied index and hash, seconds.
CONVERGE_TIMEOUT_S = 60.0
#: The whole wind-down after the faults (leader, final reads, convergence), seconds.
WIND_DOWN_S = 60.0


def check_time_limit(time_s: float) -> float:
    """The checker's default time limit for a run of ``time_s``: as long as the run
    (at least 30 s, at most 300 s); past it the verdict is ``unknown``, a failure."""
    return min(300.0, max(30.0, time_s))


@dataclass
class TortureOptions:
    seed: int
    out: Path
    nodes: int = 3
    time_s: float = 30.0
    clients: int = 10
    keys: int = 5
    tick_ms: int = 25
    faults: tuple[str, ...] = FAULT_KINDS
    hold_s: tuple[float, float] = (1.5, 4.0)
    quiet_s: tuple[float, float] = (0.5, 2.0)
    #: Chance that a fault runs together with one of the other family (process / network).
    overlap_p: float = 0.3
    settle_s: float = 3.0
    snapshot_entries: int | None = None
    check_time_limit_s: float = 300.0
    #: Told a progress line every ``progress_interval_s`` and at each phase (None: silent).
    progress: Callable[[str], None] | None = None
    progress_interval_s: float = limits.TORTURE_PROGRESS_INTERVAL_S
    #: The first SIGINT ends the faulty phase early and winds down quickly (checks
    #: still run, bounded by ``interrupted_wind_down_s``); a second one aborts.
    handle_sigint: bool = False
    #: After a SIGINT: how long the leader wait, final reads and convergence may take
    #: together, and the linearizability check alone, seconds.
    interrupted_wind_down_s: float = 10.0
    #: After the faults: how long the leader wait, final reads and convergence may take
    #: together, seconds. One budget, not one each: a cluster that never recovers used
    #: to sit out each phase's own minute in turn, then the checker's five.
    wind_down_s: float = WIND_DOWN_S
    #: Client ports of the nodes are ``base_port + i``, peers ``base_port + 100 + i``
    #: (``localcluster``); None: free ports. The proxies always use free ports.
    base_port: int | None = None


@dataclass
class TortureResult:
    ok: bool
    summary: dict[str, Any]
    failures: list[str] = field(default_factory=list)


class TortureError(ResoneticsError):
    """The run cannot start as asked (e.g. ``out`` already holds a run's data)."""


def run_torture(options: TortureOptions) -> TortureResult:
    """Run one torture test and write its artefacts into ``options.out``."""
    data_dir = options.out / "data"
    if data_dir.exists() and any(data_dir.iterdir()):
        raise TortureError(f"{data_dir} already holds node data; give an empty --out")
    options.out.mkdir(parents=True, exist_ok=True)
    extra = (
        ["--snapshot-entries", str(options.snapshot_entries)] if options.snapshot_entries else []
    )
    cluster = LocalCluster(
        options.out / "data",
        size=options.nodes,
        tick_ms=options.tick_ms,
        extra_args=extra,
        base_port=options.base_port,
    )
    mesh = ProxyMesh({n: node.peer_address for n, node in cluster.nodes.items()})
    cluster.peer_routes = mesh.routes()
    recorder = HistoryRecorder()
    rng = random.Random(options.seed)
    nemesis = Nemesis(
        cluster,
        mesh,
        random.Random(rng.random()),
        NemesisOptions(
            options.faults, options.hold_s, options.quiet_s, overlap_p=options.overlap_p
        ),
    )
    monitor = Monitor(cluster, expected_down=lambda: set(nemesis.down))
    nemesis.leader = lambda: monitor.leader
    workload = Workload(
        {n: node.address for n, node in cluster.nodes.items()},
        recorder,
        random.Random(rng.random()),
        WorkloadOptions(keys=options.keys, clients=options.clients),
    )
    run = _Run(options, cluster, mesh, nemesis, monitor, workload)
    started = time.monotonic()
    try:
        asyncio.run(run.main())
    finally:
        run.exit_codes = _stop_cluster(cluster)
        _write_logs(options.out, recorder, nemesis)  # also when the harness itself failed
    run.enter("checking")
    report = run_checks(
        history=recorder,
        data_dir=cluster.data_dir,
        node_ids=sorted(cluster.nodes),
        crashes=monitor.crashes,
        exit_codes=run.exit_codes,
        converged=run.converged,
        time_limit_s=(
            options.interrupted_wind_down_s if run.interrupted else options.check_time_limit_s
        ),
        unused_links=mesh.unused(),
    )
    run.enter("done")
    summary = _summary(options, run, report, time.monotonic() - started)
    (options.out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return TortureResult(report.ok, summary, report.failures)


@dataclass
class _Run:
    options: TortureOptions
    cluster: LocalCluster
    mesh: ProxyMesh
    nemesis: Nemesis
    monitor: Monitor
    workload: Workload
    converged: dict[str, Any] | None = None
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    final_values: dict[str, Any] = field(default_factory=dict)
    #: A SIGINT ended the faulty phase early (``TortureOptions.handle_sigint``).
    interrupted: bool = False
    #: Seconds each phase took, in order (``summary.json`` → ``phases_s``).
    phases: dict[str, float] = field(default_factory=dict)
    phase: str = "starting"
    _phase_started: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)
    _stop_faults: asyncio.Event | None = None
    _wind_down_ends: float = 0.0

    def enter(self, phase: str) -> None:
        """Close the current phase's timing and announce the next one."""
        now = time.monotonic()
        self.phases[self.phase] = round(now - self._phase_started, 3)
        self.phase, self._phase_started = phase, now
        self.report()

    def report(self) -> None:
        if self.options.progress is None:
            return
        stats = self.workload.stats
        ops = {"ok": stats.ok, "failed": stats.fail, "unknown": stats.info}
        self.options.progress(
            progress_line(
                time.monotonic() - self._started,
                self.phase,
                ops,
                self.nemesis.counts,
                self.monitor.leader,
                self.monitor.statuses,
            )
        )

    def _wait_s(self, normal_s: float) -> float:
        """What is left of the wind-down budget, and at most ``normal_s``."""
        loop = asyncio.get_running_loop()
        return max(0.0, min(normal_s, self._wind_down_ends - loop.time()))

    async def main(self) -> None:
        self._stop_faults = asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.options.handle_sigint:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        await self.mesh.start()
        try:
            self.cluster.start()
            monitor = asyncio.create_task(self.monitor.run(), name="monitor")
            ticker = asyncio.create_task(self._report_every(), name="progress")
            try:
                await self._phases()
            finally:
                for task in (monitor, ticker):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            if self.options.handle_sigint:
                loop.remove_signal_handler(signal.SIGINT)
            await self.mesh.stop()

    async def _phases(self) -> None:
        self.enter("waiting for the first leader")
        await self._wait_for_leader(FIRST_LEADER_TIMEOUT_S)
        self.enter("faults and load")
        await self._faulty_phase()
        self.enter("settling")
        if not self.interrupted:
            await asyncio.sleep(self.options.settle_s)
        budget = self.options.wind_down_s
        if self.interrupted:
            budget = min(budget, self.options.interrupted_wind_down_s)
        self._wind_down_ends = asyncio.get_running_loop().time() + budget
        self.enter("waiting for a leader after healing")
        await self._wait_for_leader(self._wait_s(FIRST_LEADER_TIMEOUT_S))
        self.enter("final reads")
        self.final_values = await self.workload.final_reads(self._wait_s(FIRST_LEADER_TIMEOUT_S))
        self.enter("converging")
        self.converged = await self._converge(self._wait_s(CONVERGE_TIMEOUT_S))
        self.monitor.check_processes()
        self.enter("stopping the cluster")

    def _on_sigint(self) -> None:
        """First Ctrl-C: wind down and report. The second one aborts (KeyboardInterrupt)."""
        self.interrupted = True
        if self._stop_faults is not None:
            self._stop_faults.set()
        if self.options.progress is not None:
            self.options.progress(
                "interrupted: healing, winding down and checking (Ctrl-C again aborts)"
            )
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    async def _report_every(self) -> None:
        while True:
            await asyncio.sleep(self.options.progress_interval_s)
            self.report()

    async def _faulty_phase(self) -> None:
        work = asyncio.create_task(self.workload.run(), name="workload")
        chaos = asyncio.create_task(self.nemesis.run(), name="nemesis")
        assert self._stop_faults is not None
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_faults.wait(), self.options.time_s)
        finally:
            chaos.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chaos
            self.workload.stop()
            await work

    async def _wait_for_leader(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            for node in self.cluster.nodes.values():
                status = await fetch_status(node.address)
                if status is not None and status.get("role") == "leader":
                    return
            await asyncio.sleep(0.2)

    async def _converge(self, timeout_s: float) -> dict[str, Any] | None:
        """Every node's (applied index, hash at it), once they all agree; None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            ids = sorted(self.cluster.nodes)
            found = await asyncio.gather(
                *(fetch_status(self.cluster.nodes[n].address) for n in ids)
            )
            views = {
                n: (s["applied_index"], s["last_index"], s["last_hash"])
                for n, s in zip(ids, found, strict=True)
                if s is not None
            }
            if len(views) == len(ids) and len(set(views.values())) == 1:
                applied, last, digest = next(iter(views.values()))
                if applied == last:
                    return {"applied_index": applied, "hash": digest}
            await asyncio.sleep(0.25)
        return None


def _stop_cluster(cluster: LocalCluster) -> dict[str, int | None]:
    """SIGTERM every node and collect exit codes (0 is a clean shutdown)."""
    codes: dict[str, int | None] = {}
    for node_id in sorted(cluster.nodes):
        try:
            codes[node_id] = cluster.stop_node(node_id)
        except Exception:  # a node that will not stop is reported, not raised
            codes[node_id] = None
    cluster.stop()
    return codes


def _summary(
    options: TortureOptions, run: _Run, report: CheckReport, elapsed_s: float
) -> dict[str, Any]:
    stats = run.workload.stats
    # Leaders as the monitor saw them and as NOT_LEADER answers named them: (term, node).
    leaders = sorted(set(run.monitor.leaders) | stats.leaders_seen)
    return {
        "seed": options.seed,
        "nodes": options.nodes,
        "time_s": options.time_s,
        "clients": options.clients,
        "keys": options.keys,
        "faults_enabled": list(options.faults),
        "hold_s": list(options.hold_s),
        "quiet_s": list(options.quiet_s),
        "overlap_p": options.overlap_p,
        "tick_ms": options.tick_ms,
        "snapshot_entries": options.snapshot_entries,
        "ok": report.ok,
        "failures": report.failures,
        "ops": {"ok": stats.ok, "fail": stats.fail, "info": stats.info},
        "codes": dict(sorted(stats.by_code.items())),
        "faults": dict(sorted(run.nemesis.counts.items())),
        "leaders": [list(x) for x in leaders],
        "leader_changes": max(0, len(leaders) - 1),
        "final_values": run.final_values,
        "converged": run.converged,
        "exit_codes": run.exit_codes,
        "crashes": run.monitor.crashes,
        "checker": report.checker,
        "verify": report.verify,
        "elapsed_s": round(elapsed_s, 3),
        "phases_s": run.phases,
        "interrupted": run.interrupted,
    }


def _write_logs(out: Path, recorder: HistoryRecorder, nemesis: Nemesis) -> None:
    recorder.dump(out / "history.jsonl")
    (out / "nemesis.jsonl").write_text(
        "".join(json.dumps(event, sort_keys=True) + "\n" for event in nemesis.log),
        encoding="utf-8",
    )


__all__ = [
    "TortureError",
    "TortureOptions",
    "TortureResult",
    "check_time_limit",
    "run_torture",
]
