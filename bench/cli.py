"""``python -m bench``: command-line options, then run, print, save and plot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from bench.adapters import DEFAULT_SYSTEMS, parse_systems
from bench.plot import plot_report
from bench.report import (
    baselines,
    ratio_rows,
    render_markdown,
    render_ratio_table,
    render_table,
    write_json,
)
from bench.runner import BenchConfig, run_bench
from bench.workload import parse_workloads


def parse_concurrency(text: str) -> list[int]:
    values = [int(p) for p in text.split(",") if p.strip()]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"concurrency must be positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resonetics bench", description=__doc__)
    parser.add_argument("--systems", default=DEFAULT_SYSTEMS)
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also run resonetics-tls and etcd-tls (mutual TLS) after each chosen plain system",
    )
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--workloads", default="write,read,mix")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    return parser


def config_from_args(argv: list[str]) -> BenchConfig:
    args = build_parser().parse_args(argv)
    try:
        return BenchConfig(
            systems=parse_systems(args.systems, tls=args.tls),
            workloads=parse_workloads(args.workloads),
            concurrency=parse_concurrency(args.concurrency),
            duration_s=args.duration,
            warmup_s=args.warmup,
            procs=max(1, args.procs),
            out_dir=args.out,
        )
    except ValueError as exc:
        build_parser().error(str(exc))


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(sys.argv[1:] if argv is None else argv)
    console = Console(width=max(Console().width, 120))
    report = run_bench(config, console)
    console.print(render_table(report))
    if ratio_rows(report) and baselines(report):
        console.print(render_ratio_table(report))
    start, end = report.machine.get("loadavg_start"), report.machine.get("loadavg_end")
    console.print(
        f"load average (1/5/15 min): {start} at the start, {end} at the end", markup=False
    )
    for system, why in report.failures.items():
        console.print(f"[red]not measured[/red] {system}: {why}")
    write_json(report, config.out_dir / "results.json")
    (config.out_dir / "results.md").write_text(render_markdown(report))
    if plot_report(report, config.out_dir / "bench.png"):
        console.print(f"plot: {config.out_dir / 'bench.png'}")
    else:
        console.print(
            "plot skipped: matplotlib is not installed (pip install -e '.[bench]')", markup=False
        )
    console.print(f"results: {config.out_dir / 'results.json'}")
    return 0 if report.points else 1


__all__ = ["build_parser", "config_from_args", "main", "parse_concurrency"]
