"""Report rendering: the table, Markdown, JSON with ratios, HTTP parsing, and option parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.adapters import parse_systems
from bench.adapters.http11 import build_request, parse_response
from bench.cli import config_from_args
from bench.loadgen import RawRun
from bench.report import (
    ratio_rows,
    render_markdown,
    render_ratio_table,
    render_table,
    write_json,
)
from bench.results import Point, Report, load_report
from rich.console import Console


def _report() -> Report:
    report = Report(config={"duration_s": 2.0}, machine={"cpus": 2})
    for system, ok in (("resonetics", 2000), ("etcd", 4000), ("pysyncobj", 1000)):
        raw = RawRun(ok=ok, latencies_s=[0.001] * 10, cpu_s=0.5, window_s=2.0)
        report.points.append(Point.from_raw(system, "write", 64, raw))
        report.durability[system] = f"{system} durability"
    return report


def test_ratios_are_throughput_over_baseline() -> None:
    report = _report()
    assert report.ratios("etcd") == [{"workload": "write", "concurrency": 64, "ratio": 0.5}]
    assert report.ratios("pysyncobj")[0]["ratio"] == 2.0


def test_point_from_raw() -> None:
    point = _report().points[0]
    assert point.ops_per_s == 1000.0
    assert point.gen_cpu_pct == 25.0
    assert point.latency.p99_ms == pytest.approx(1.0)


def test_table_shows_every_point() -> None:
    console = Console(width=200, record=True)
    console.print(render_table(_report()))
    text = console.export_text()
    assert "resonetics" in text and "etcd" in text and "pysyncobj" in text
    assert "1,000" in text and "2,000" in text


def test_ratio_table_has_a_column_per_baseline() -> None:
    assert ratio_rows(_report()) == [["write", "64", "0.50", "2.00"]]
    console = Console(width=200, record=True)
    console.print(render_ratio_table(_report()))
    text = console.export_text()
    assert "÷ etcd" in text and "÷ pysyncobj" in text


def test_markdown_has_a_row_per_point_and_ratio() -> None:
    md = render_markdown(_report())
    assert md.count("| resonetics |") == 1
    assert md.count("\n|---") == 2
    assert "| write | 64 | 0.50 | 2.00 |" in md


def test_json_round_trips(tmp_path: Path) -> None:
    write_json(_report(), tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["points"]) == 3
    assert data["ratios"]["resonetics/etcd"][0]["ratio"] == 0.5
    assert data["durability"]["etcd"] == "etcd durability"


def test_http_response_parsing() -> None:
    assert build_request("/v3/kv/put", "h:1", b"{}").endswith(b"Content-Length: 2\r\n\r\n{}")
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1"
    assert parse_response(whole) == (200, b"{}", len(whole) - len(b"HTTP/1.1"))
    assert parse_response(whole[:30]) is None
    chunked = b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert parse_response(chunked) == (500, b"abc", len(chunked))
    assert parse_response(chunked[:-4]) is None


def test_options_are_parsed_and_checked() -> None:
    config = config_from_args(["--systems", "etcd,resonetics", "--concurrency", "1,16"])
    assert config.systems == ["etcd", "resonetics"]
    assert config.concurrency == [1, 16]
    assert parse_systems("pysyncobj-nobatch") == ["pysyncobj-nobatch"]
    with pytest.raises(SystemExit):
        config_from_args(["--systems", "mongodb"])


def test_saved_report_loads_back(tmp_path: Path) -> None:
    original = _report()
    write_json(original, tmp_path / "r.json")
    loaded = load_report(tmp_path / "r.json")
    assert loaded.points == original.points
    assert loaded.durability == original.durability
