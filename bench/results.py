"""The results of a benchmark run, as plain data: one ``Point`` per system, workload and N."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import RawRun
from bench.stats import LatencySummary, cdf_points, ratio, summarize


@dataclass(frozen=True, slots=True)
class Point:
    """One measured (system, workload, concurrency) cell."""

    system: str
    workload: str
    concurrency: int
    ops_per_s: float
    errors: int
    latency: LatencySummary
    gen_cpu_pct: float
    cdf: list[tuple[float, float]]
    first_error: str | None = None

    @classmethod
    def from_raw(cls, system: str, workload: str, concurrency: int, raw: RawRun) -> Point:
        window = raw.window_s or 1.0
        return cls(
            system=system,
            workload=workload,
            concurrency=concurrency,
            ops_per_s=raw.ok / window,
            errors=raw.errors,
            latency=summarize(raw.latencies_s),
            gen_cpu_pct=100.0 * raw.cpu_s / window,
            cdf=cdf_points(raw.latencies_s),
            first_error=raw.first_error,
        )


@dataclass
class Report:
    """Everything one run measured, with the conditions it ran under."""

    config: dict[str, Any]
    machine: dict[str, Any]
    points: list[Point] = field(default_factory=list)
    durability: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def point(self, system: str, workload: str, concurrency: int) -> Point | None:
        for p in self.points:
            if (p.system, p.workload, p.concurrency) == (system, workload, concurrency):
                return p
        return None

    def ratios(self, baseline: str, system: str = "resonetics") -> list[dict[str, Any]]:
        """Throughput of ``system`` over ``baseline`` for every cell both measured."""
        out = []
        for p in self.points:
            if p.system != system:
                continue
            base = self.point(baseline, p.workload, p.concurrency)
            if base is not None:
                value = ratio(p.ops_per_s, base.ops_per_s)
                out.append({"workload": p.workload, "concurrency": p.concurrency, "ratio": value})
        return out

    def to_dict(self) -> dict[str, Any]:
        from bench.report import ratio_pairs  # report imports this module

        return {
            "config": self.config,
            "machine": self.machine,
            "durability": self.durability,
            "notes": self.notes,
            "failures": self.failures,
            "points": [asdict(p) for p in self.points],
            "ratios": {f"{n}/{d}": self.ratios(d, n) for n, d in ratio_pairs(self)},
        }


def load_report(path: Path) -> Report:
    """A report saved by ``write_json`` (for redrawing or re-rendering it)."""
    data = json.loads(path.read_text())
    report = Report(
        config=data["config"],
        machine=data["machine"],
        durability=data["durability"],
        notes=data["notes"],
        failures=data["failures"],
    )
    for p in data["points"]:
        report.points.append(
            Point(
                system=p["system"],
                workload=p["workload"],
                concurrency=p["concurrency"],
                ops_per_s=p["ops_per_s"],
                errors=p["errors"],
                latency=LatencySummary(**p["latency"]),
                gen_cpu_pct=p["gen_cpu_pct"],
                cdf=[(x, y) for x, y in p["cdf"]],
                first_error=p["first_error"],
            )
        )
    return report


__all__ = ["Point", "Report", "load_report"]
