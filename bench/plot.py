"""The figure: throughput vs concurrency per workload, and a latency CDF per system.

matplotlib is an optional dependency (the ``bench`` extra); without it the run
still writes its table and JSON and says the plot was skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results import Report, load_report


def plot_report(report: Report, path: Path) -> bool:
    """Save the figure as PNG at ``path``; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = sorted({p.workload for p in report.points})
    systems = sorted({p.system for p in report.points})
    if not workloads:
        return False
    fig, axes = plt.subplots(2, len(workloads), figsize=(5.5 * len(workloads), 9), squeeze=False)
    for col, workload in enumerate(workloads):
        _throughput(axes[0][col], report, workload, systems)
        _cdf(axes[1][col], report, workload, systems)
    # One line per durability setting (the variants of a system share one), so the title fits.
    by_setting: dict[str, list[str]] = {}
    for system, setting in sorted(report.durability.items()):
        by_setting.setdefault(setting, []).append(system)
    durability = "\n".join(f"{', '.join(names)}: {d}" for d, names in by_setting.items())
    fig.suptitle(f"3-node clusters on loopback, 2 cores\n{durability}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _throughput(ax: Any, report: Report, workload: str, systems: list[str]) -> None:
    from matplotlib.ticker import NullFormatter

    for system in systems:
        pts = sorted(
            (p for p in report.points if p.system == system and p.workload == workload),
            key=lambda p: p.concurrency,
        )
        if pts:
            ax.plot(
                [p.concurrency for p in pts], [p.ops_per_s for p in pts], marker="o", label=system
            )
    ax.set_xscale("log", base=2)
    ticks = sorted({p.concurrency for p in report.points})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("ops/s")
    ax.set_title(f"{workload}: throughput")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def _cdf(ax: Any, report: Report, workload: str, systems: list[str]) -> None:
    """The CDF at the highest concurrency each system ran (where queueing shows)."""
    from matplotlib.ticker import NullFormatter

    for system in systems:
        pts = [p for p in report.points if p.system == system and p.workload == workload]
        if not pts:
            continue
        top = max(pts, key=lambda p: p.concurrency)
        if top.cdf:
            xs, ys = zip(*top.cdf, strict=True)
            ax.plot(xs, ys, label=f"{system} (N={top.concurrency})")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("latency, ms")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{workload}: latency CDF")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.plot results.json out.png``: redraw a figure from a saved run."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m bench.plot RESULTS.json OUT.png", file=sys.stderr)
        return 2
    return 0 if plot_report(load_report(Path(args[0])), Path(args[1])) else 1


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["main", "plot_report"]
