"""Rendering a ``Report``: a rich table for the terminal, a Markdown table, and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from bench.results import Point, Report

_COLUMNS = (
    "system",
    "workload",
    "N",
    "ops/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "errors",
    "gen CPU %",
)


def _cells(p: Point) -> list[str]:
    lat = p.latency
    return [
        p.system,
        p.workload,
        str(p.concurrency),
        f"{p.ops_per_s:,.0f}",
        f"{lat.p50_ms:.2f}",
        f"{lat.p90_ms:.2f}",
        f"{lat.p99_ms:.2f}",
        f"{lat.max_ms:.1f}",
        str(p.errors),
        f"{p.gen_cpu_pct:.0f}",
    ]


def _ratio_text(report: Report, p: Point) -> str:
    parts = []
    for base in sorted({q.system for q in report.points if q.system != "resonetics"}):
        for r in report.ratios(base):
            if (r["workload"], r["concurrency"]) == (p.workload, p.concurrency):
                value = r["ratio"]
                parts.append(f"/{base} {value:.2f}" if value is not None else f"/{base} -")
    return "  ".join(parts)


def render_table(report: Report) -> Table:
    """One row per measured cell; Resonetics rows carry their ratios to each baseline."""
    table = Table(title="Throughput and latency (3-node clusters on loopback)")
    for name in (*_COLUMNS, "Resonetics ÷"):
        table.add_column(name, justify="left" if name in ("system", "workload") else "right")
    for p in sorted(report.points, key=lambda q: (q.workload, q.concurrency, q.system)):
        table.add_row(*_cells(p), _ratio_text(report, p) if p.system == "resonetics" else "")
    return table


def render_markdown(report: Report) -> str:
    """The same table in Markdown, for docs/benchmarks.md."""
    header = [*_COLUMNS, "Resonetics ÷"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in sorted(report.points, key=lambda q: (q.workload, q.concurrency, q.system)):
        ratio = _ratio_text(report, p) if p.system == "resonetics" else ""
        lines.append("| " + " | ".join([*_cells(p), ratio]) + " |")
    return "\n".join(lines) + "\n"


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")


__all__ = ["render_markdown", "render_table", "write_json"]
