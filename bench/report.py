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


def baselines(report: Report) -> list[str]:
    """Every measured system that is not a Resonetics variant."""
    return sorted({p.system for p in report.points if not p.system.startswith("resonetics")})


def ratio_pairs(report: Report) -> list[tuple[str, str]]:
    """(numerator, denominator) systems of the ratio table, each pair measured the same way.

    A ``*-tls`` baseline is divided into ``resonetics-tls``, any other into
    ``resonetics``; the signed and library-client rows are divided by plain
    ``resonetics`` (what signing costs, what one client reaches of the cluster).
    """
    present = {p.system for p in report.points}
    pairs = []
    for base in baselines(report):
        num = "resonetics-tls" if base.endswith("-tls") else "resonetics"
        if num in present:
            pairs.append((num, base))
    for variant in ("resonetics-signed", "resonetics-client"):
        if variant in present and "resonetics" in present:
            pairs.append((variant, "resonetics"))
    return pairs


def ratio_header(pair: tuple[str, str]) -> str:
    num, den = pair
    return f"÷ {den}" if num == "resonetics" else f"{num} ÷ {den}"


def ratio_rows(report: Report) -> list[list[str]]:
    """One row per (workload, N) measured: each pair's throughput ratio, ``-`` if not both."""
    pairs = ratio_pairs(report)
    table = {
        pair: {
            (r["workload"], r["concurrency"]): r["ratio"] for r in report.ratios(pair[1], pair[0])
        }
        for pair in pairs
    }
    cells = sorted(
        {(p.workload, p.concurrency) for p in report.points if any(p.system == n for n, _ in pairs)}
    )
    rows = []
    for workload, n in cells:
        values = [table[pair].get((workload, n)) for pair in pairs]
        rows.append([workload, str(n), *(f"{c:.2f}" if c is not None else "-" for c in values)])
    return rows


def _sorted_points(report: Report) -> list[Point]:
    return sorted(report.points, key=lambda q: (q.workload, q.concurrency, q.system))


def render_table(report: Report) -> Table:
    """One row per measured cell."""
    table = Table(title="Throughput and latency (3-node clusters on loopback)")
    for name in _COLUMNS:
        table.add_column(name, justify="left" if name in ("system", "workload") else "right")
    for p in _sorted_points(report):
        table.add_row(*_cells(p))
    return table


def render_ratio_table(report: Report) -> Table:
    """Each ratio pair's ops/s quotient (``ratio_pairs``), per workload and concurrency."""
    table = Table(title="Throughput ratios, same run (>1: the numerator is faster)")
    for name in ("workload", "N", *(ratio_header(p) for p in ratio_pairs(report))):
        table.add_column(name, justify="left" if name == "workload" else "right")
    for row in ratio_rows(report):
        table.add_row(*row)
    return table


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_markdown(report: Report) -> str:
    """Both tables in Markdown, for docs/benchmarks.md."""
    lines = _md_table(list(_COLUMNS), [_cells(p) for p in _sorted_points(report)])
    lines += [
        "",
        *_md_table(
            ["workload", "N", *(ratio_header(p) for p in ratio_pairs(report))], ratio_rows(report)
        ),
    ]
    return "\n".join(lines) + "\n"


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")


__all__ = [
    "baselines",
    "ratio_header",
    "ratio_pairs",
    "ratio_rows",
    "render_markdown",
    "render_ratio_table",
    "render_table",
    "write_json",
]
