"""Flood bench: issue 14's resource targets, measured on a real local 3-node cluster.

Not a test: run ``python -m bench.flood [--scenario all|partial|idle|junk|slowloris]
[--out FILE]``. Each scenario starts a fresh ``LocalCluster`` (loopback, free
ports, the shipped ``resonetics serve``), aims at the node that leads when it
starts (the "target"), stops by itself within a fixed time and stops the
cluster. Figures are printed as text and written as JSON with ``--out``.

* ``partial``: ``--partial-conns`` (300) connections each send ``--partial-bytes``
  (4 MiB, exactly the line limit) without a newline, plus ``--idle-conns`` (1,000)
  connections that send nothing, all spread over the source addresses
  127.0.0.1-3. The target's VmRSS is sampled every 0.5 s. While the flood is held,
  20 new ``resonetics.Client``s (from 127.0.0.1) each do a put and a get; then the
  flood is closed, RSS is read again ``--settle`` (30) s later, and 20 more clients
  run. Reports peak RSS, RSS after the settle, the connections the node closed on
  its own and when.
* ``idle``: ``--idle-total`` (1,300) idle connections from 3 sources held for
  ``--hold`` (30) s or until the node has closed them all; 20 new clients 3 s into
  the hold and 20 at its end.
* ``junk``: 2 connections send junk lines (invalid JSON, wrong types, unknown kinds
  and ops) as fast as the target takes them for ``--junk-seconds`` (10) s, from a
  separate process, while one client does sequential puts; every node's ``status``
  is polled every 0.2 s. Reports the client's p50/p99/max, elections (terms begun)
  and junk lines sent vs answered.
* ``slowloris``: one connection sending 1 byte/s; when the node closes it (capped
  at ``--slowloris-cap`` s).

Every scenario records node exits and each node's ``handler_errors``. The fd limit
is raised to the hard limit first (the nodes inherit it); the report says whether
it covers the connections asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.flood_conns import (
    Flock,
    ProcSampler,
    StatusPoller,
    junk_worker,
    new_clients,
    send_partial,
    slowloris,
)
from bench.flood_metrics import (
    MIB,
    check_targets,
    elections_seen,
    latency_ms,
    leaders_seen,
    spread,
)
from resonetics.client import Client
from resonetics.localcluster import LocalCluster

SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
SCENARIOS = ("partial", "idle", "junk", "slowloris")
#: Descriptors the bench needs beyond its flood connections (cluster pipes, logs, clients).
FD_SPARE = 256


def raise_fd_limit(needed: int) -> dict[str, Any]:
    """Raise RLIMIT_NOFILE's soft limit to the hard one; say whether ``needed`` fits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed + FD_SPARE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft_now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "soft_before": soft,
        "soft": soft_now,
        "hard": hard,
        "needed": needed + FD_SPARE,
        "enough": soft_now >= needed + FD_SPARE,
    }


class Run:
    """One scenario's cluster, target node and RSS sampler; stops them all on exit."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.name = name
        self.cluster = LocalCluster(tmp / name, size=3)
        self.target = ""
        self.sampler: ProcSampler | None = None
        self._sampling: asyncio.Task[None] | None = None
        self.poller: StatusPoller | None = None
        self._polling: asyncio.Task[None] | None = None
        self.started = time.monotonic()

    async def __aenter__(self) -> Run:
        self.cluster.start()
        self.target, _ = await asyncio.to_thread(self.cluster.wait_for_leader, 30.0)
        process = self.cluster.nodes[self.target].process
        assert process is not None
        # A first write, so the target has served a client once before it is measured.
        await asyncio.to_thread(_warm_up, self.cluster.addresses)
        self.started = time.monotonic()
        self.sampler = ProcSampler(process.pid, self.started)
        self._sampling = asyncio.create_task(self.sampler.run())
        # Every node's term and leader all along (its connections open before any flood).
        self.poller = StatusPoller({n.node_id: n.address for n in self.cluster.nodes.values()})
        await self.poller.poll_once()
        self._polling = asyncio.create_task(self.poller.run())
        return self

    async def stop_watching(self) -> None:
        for task in (self._sampling, self._polling):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.poller is not None:
            self.poller.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_watching()
        await asyncio.to_thread(self.cluster.stop)

    def elections(self) -> dict[str, Any]:
        """Terms begun while the scenario ran, the (term, leader) pairs, polls missed."""
        assert self.poller is not None
        polls = self.poller.polls
        terms = [{n: term for n, (term, _) in poll.items()} for poll in polls]
        return {
            "elections": elections_seen(terms),
            "leaders": leaders_seen(polls),
            "status_polls": len(polls),
            "status_polls_missed": self.poller.missed,
        }

    def now(self) -> float:
        return time.monotonic() - self.started

    @property
    def address(self) -> str:
        return self.cluster.nodes[self.target].address

    @property
    def client_addresses(self) -> list[str]:
        """The target first: a new client asks it before any other node."""
        return [self.address, *(a for a in self.cluster.addresses if a != self.address)]

    def rss_mb(self) -> float | None:
        assert self.sampler is not None
        kb = self.sampler.sample().rss_kb
        return None if kb is None else round(kb / 1024, 1)

    def node_health(self) -> dict[str, Any]:
        """Exit codes of nodes that exited on their own, and each live node's handler_errors."""
        exits = {n: c for n, c in self.cluster.exit_codes().items() if c is not None}
        errors = {}
        for node_id in self.cluster.nodes:
            st = self.cluster.status(node_id, timeout_s=3.0)
            errors[node_id] = None if st is None else st.get("handler_errors")
        return {"target": self.target, "node_exits": exits, "handler_errors": errors}


def _warm_up(addresses: list[str]) -> None:
    with Client(addresses, timeout=10) as client:
        client.put("flood-warm-up", 1)


async def _clients(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    out = await new_clients(run.client_addresses, args.clients, args.client_timeout)
    out["at_s"] = round(run.now(), 2)
    # Who led as the clients ran: 20 served may mean the target was deposed meanwhile.
    assert run.poller is not None
    recent = run.poller.polls[-3:]
    out["leaders_then"] = sorted({f"{t}:{ld}" for p in recent for t, ld in p.values() if ld})
    return out


async def scenario_partial(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    assert run.sampler is not None
    rss_before = run.rss_mb()
    flood = Flock(run.address, args.sources, started=run.started)
    idle = Flock(run.address, args.sources, started=run.started)
    chunk = b"x" * (64 * 1024)
    try:
        writers = await flood.open_many(args.partial_conns)
        await idle.open_many(args.idle_conns)
        send_started = run.now()
        sends = [
            asyncio.create_task(
                send_partial(w, flood.record_of(w), args.partial_bytes, chunk, run.now)
            )
            for w in writers
            if w is not None
        ]
        _, pending = await asyncio.wait(sends, timeout=args.send_deadline) if sends else ((), ())
        for task in pending:
            task.cancel()
        send_done = run.now()
        await asyncio.sleep(args.partial_hold)
        during = await _clients(run, args)
        peak_held = run.sampler.peak_mb()
    finally:
        closed_at = run.now()
        flood_summary = flood.summary(hold_end=closed_at)
        idle_summary = idle.summary(hold_end=closed_at)
        await flood.close_all()
        await idle.close_all()
    await asyncio.sleep(args.settle)
    after_close = run.rss_mb()
    after = await _clients(run, args)
    full = [r for r in flood.records if r.sent >= args.partial_bytes]
    flood_summary["sent_all_bytes"] = len(full)
    flood_summary["bytes_sent_total_mb"] = round(sum(r.sent for r in flood.records) / MIB, 1)
    closed_after_send = [
        r.closed_by_node_at - r.sent_done_at
        for r in flood.records
        if r.closed_by_node_at is not None and r.sent_done_at is not None
    ]
    flood_summary["closed_after_last_byte_s"] = _spread(closed_after_send)
    return {
        "connections": {"partial": flood_summary, "idle": idle_summary},
        "timeline_s": {
            "send_started": round(send_started, 2),
            "send_done": round(send_done, 2),
            "flood_closed": round(closed_at, 2),
        },
        "rss": {
            "before_mb": rss_before,
            "peak_mb": run.sampler.peak_mb(),
            "peak_while_held_mb": peak_held,
            "after_close_mb": after_close,
            "settle_s": args.settle,
            "peak_fds": run.sampler.peak_fds(),
        },
        "clients_during": during,
        "clients_after": after,
        "samples": run.sampler.series(),
    }


def _spread(values: list[float]) -> dict[str, Any]:
    return spread(values).to_dict()


async def scenario_idle(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    assert run.sampler is not None
    idle = Flock(run.address, args.sources, started=run.started)
    try:
        await idle.open_many(args.idle_total)
        opened_at = run.now()
        await asyncio.sleep(3.0)
        during = await _clients(run, args)
        open_at_clients = idle.open_count()
        hold_until = opened_at + args.hold
        while run.now() < hold_until and idle.open_count() > 0:
            await asyncio.sleep(0.5)
        end = await _clients(run, args)
        held_end = run.now()
        summary = idle.summary(hold_end=held_end)
    finally:
        await idle.close_all()
    summary["open_when_clients_ran"] = open_at_clients
    return {
        "connections": summary,
        "timeline_s": {"all_opened": round(opened_at, 2), "hold_end": round(held_end, 2)},
        "clients_during": during,
        "clients_at_end": end,
        "rss": {"peak_mb": run.sampler.peak_mb(), "peak_fds": run.sampler.peak_fds()},
        "samples": run.sampler.series(),
    }


async def scenario_junk(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    assert run.sampler is not None
    ctx = multiprocessing.get_context("spawn")
    queue: Any = ctx.Queue()
    worker = ctx.Process(
        target=junk_worker, args=(run.address, args.junk_conns, args.junk_seconds, queue)
    )
    worker.start()
    try:
        latencies, errors = await asyncio.to_thread(
            _sequential_puts, run.client_addresses, args.junk_seconds + 0.5, args.client_timeout
        )
        junk: dict[str, Any] = await asyncio.to_thread(queue.get, True, args.junk_seconds + 60)
        await asyncio.sleep(1.0)  # an election the flood caused may finish just after it
    finally:
        worker.join(10)
        if worker.is_alive():
            worker.kill()
            worker.join()
    return {
        "junk": junk,
        "client": {**latency_ms(latencies), "errors": errors},
        "rss": {"peak_mb": run.sampler.peak_mb()},
    }


def _sequential_puts(
    addresses: list[str], seconds: float, timeout_s: float
) -> tuple[list[float], dict[str, int]]:
    """One well-behaved client doing puts one after another for ``seconds``; each timed.

    A put that fails (a timeout after ``timeout_s``) still counts with the time it took,
    so a timeout shows in the tail as a lower bound of the real latency."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    with Client(addresses, timeout=timeout_s) as client:
        i = 0
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                client.put(f"flood-seq-{i % 100}", i)
            except Exception as exc:  # a figure, not a crash of the bench
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - t0)
            i += 1
    return latencies, errors


async def scenario_slowloris(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    return await slowloris(run.address, args.slowloris_cap)


RUNNERS: dict[str, Callable[[Run, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "partial": scenario_partial,
    "idle": scenario_idle,
    "junk": scenario_junk,
    "slowloris": scenario_slowloris,
}


async def run_all(names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
        for name in names:
            print(f"[flood] {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            async with Run(Path(tmp), name) as run:
                try:
                    result = await RUNNERS[name](run, args)
                except Exception as exc:  # report it and go on with the next scenario
                    result = {"bench_error": f"{type(exc).__name__}: {exc}"}
                await run.stop_watching()
                result.update(run.elections())
                result.update(run.node_health())
            result["wall_s"] = round(time.monotonic() - started, 1)
            results[name] = result
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default="all", choices=["all", *SCENARIOS])
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument(
        "--sources",
        type=lambda text: [a for a in text.split(",") if a],
        default=SOURCES,
        help="comma-separated loopback source addresses of the flood (clients use 127.0.0.1)",
    )
    p.add_argument("--partial-conns", type=int, default=300)
    p.add_argument("--partial-bytes", type=int, default=4 * MIB)
    p.add_argument(
        "--idle-conns", type=int, default=1000, help="idle ones beside the partial flood"
    )
    p.add_argument("--send-deadline", type=float, default=60.0, help="s for the partial sends")
    p.add_argument("--partial-hold", type=float, default=3.0, help="s held before the clients")
    p.add_argument("--settle", type=float, default=30.0, help="s after closing before RSS is read")
    p.add_argument("--idle-total", type=int, default=1300)
    p.add_argument("--hold", type=float, default=30.0, help="s the idle connections are held")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--client-timeout", type=float, default=5.0)
    p.add_argument("--junk-conns", type=int, default=2)
    p.add_argument("--junk-seconds", type=float, default=10.0)
    p.add_argument("--slowloris-cap", type=float, default=30.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    needed = max(
        args.partial_conns + args.idle_conns if "partial" in names else 0,
        args.idle_total if "idle" in names else 0,
    )
    fd_limit = raise_fd_limit(needed)
    if not fd_limit["enough"]:
        print(
            f"[flood] fd limit {fd_limit['soft']} < {fd_limit['needed']} needed: "
            "connections past it fail with EMFILE (counted as connect errors)",
            file=sys.stderr,
        )
    started = dt.datetime.now(dt.UTC)
    scenarios = asyncio.run(run_all(names, args))
    report = {
        "bench": "flood",
        "started_utc": started.isoformat(timespec="seconds"),
        "command": "python -m bench.flood " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": _cpus(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "fd_limit": fd_limit,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "scenarios": scenarios,
        "targets": [t.to_dict() for t in check_targets(scenarios)],
    }
    print(render_text(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _cpus() -> int:
    return os.cpu_count() or 0


def _brief(value: Any) -> Any:
    """A clients result without its 20 latencies (their max stands for them)."""
    if isinstance(value, dict) and "latencies_s" in value:
        rest = {k: v for k, v in value.items() if k != "latencies_s"}
        return rest | {"max_latency_s": max(value["latencies_s"], default=None)}
    return value


def render_text(report: dict[str, Any]) -> str:
    """The report for a terminal: each scenario's figures (no sample series), then targets."""
    lines = [
        f"flood bench {report['started_utc']}  fd limit {report['fd_limit']['soft']}"
        f" (needed {report['fd_limit']['needed']})"
    ]
    for name, result in report["scenarios"].items():
        lines.append(f"\n== {name} ({result.get('wall_s')} s)")
        for key, value in result.items():
            if key in {"samples", "wall_s"}:
                continue
            lines.append(f"  {key}: {json.dumps(_brief(value))}")
    lines.append("\n== targets (issue 14)")
    for t in report["targets"]:
        mark = {True: "MET", False: "MISSED", None: "n/a"}[t["ok"]]
        lines.append(f"  [{mark:6}] {t['name']}: {t['measured']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
