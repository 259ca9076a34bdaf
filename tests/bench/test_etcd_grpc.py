"""The etcd gRPC row's pure pieces: the Go generator's command line and its JSON, the etcd
member command with mutual TLS, the --tls option, the ratio pairs and the signed cluster's
flags. Nothing here starts etcd or builds Go, and nothing times anything."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from bench.adapters import parse_systems
from bench.adapters.base import SystemFailed, Target
from bench.adapters.etcd import member_command
from bench.adapters.etcd_grpc import (
    GeneratorOutputError,
    generator_binary,
    generator_command,
    parse_output,
    run_generator,
)
from bench.adapters.resonetics import cluster_extra_args
from bench.cli import config_from_args
from bench.loadgen import RawRun
from bench.report import ratio_pairs, ratio_rows, render_markdown
from bench.results import Point, Report
from bench.workload import KEYSPACE_KEYS, VALUE_BYTES

from bench import runner
from resonetics.security.certs import ClusterTLS

BIN = Path("/opt/etcd_load")
TARGET = Target("etcd", "127.0.0.1:2379", others=("127.0.0.1:2380",), generator="etcd_load")


def _output(**over: object) -> str:
    data: dict[str, object] = {
        "generator": "etcd_load (Go, gRPC)",
        "ok": 3,
        "errors": 1,
        "first_error": "rpc error: code = Unavailable",
        "window_s": 4.0,
        "cpu_s": 0.5,
        "summary": {"count": 3, "p50_ms": 2.0},
        "latencies_ns": [1_000_000, 2_000_000, 3_000_000],
    }
    data.update(over)
    return json.dumps(data)


def test_generator_command_names_every_setting() -> None:
    cmd = generator_command(BIN, TARGET, "read", 256, 4.0, 1.0)
    assert cmd[0] == str(BIN)
    assert "-endpoints=127.0.0.1:2379,127.0.0.1:2380" in cmd
    assert "-workload=read" in cmd and "-concurrency=256" in cmd
    assert "-duration=4.0s" in cmd and "-warmup=1.0s" in cmd
    assert f"-value-size={VALUE_BYTES}" in cmd and f"-keys={KEYSPACE_KEYS}" in cmd
    assert "-conns=4" in cmd  # the same rule as bench/loadgen.py for pipelined systems
    assert not any(arg.startswith("-cacert") for arg in cmd)


def test_generator_command_one_connection_at_concurrency_one() -> None:
    assert "-conns=1" in generator_command(BIN, TARGET, "write", 1, 4.0, 1.0)


def test_generator_command_passes_mutual_tls_files() -> None:
    target = Target("etcd-tls", "127.0.0.1:1", tls_files=("ca.pem", "c.pem", "c.key"))
    cmd = generator_command(BIN, target, "write", 1, 1.0, 0.0)
    assert cmd[-3:] == ["-cacert=ca.pem", "-cert=c.pem", "-key=c.key"]


def test_generator_command_refuses_impossible_settings() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        generator_command(BIN, TARGET, "write", 0, 4.0, 1.0)
    with pytest.raises(ValueError, match="duration"):
        generator_command(BIN, TARGET, "write", 1, 0.0, 1.0)


def test_parse_output_gives_the_same_raw_run_as_the_python_generator() -> None:
    raw = parse_output(_output())
    assert raw.ok == 3 and raw.errors == 1
    assert raw.latencies_s == [0.001, 0.002, 0.003]
    assert raw.cpu_s == 0.5 and raw.window_s == 4.0
    assert raw.first_error == "rpc error: code = Unavailable"
    point = Point.from_raw("etcd", "write", 1, raw)
    assert point.gen_cpu_pct == 12.5
    assert point.latency.p50_ms == pytest.approx(2.0)


def test_parse_output_with_no_error_and_no_request() -> None:
    raw = parse_output(_output(ok=0, errors=0, first_error=None, latencies_ns=[]))
    assert raw.first_error is None and raw.latencies_s == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (_output(ok=5), "ok=5 but 3 latencies"),
        (_output(latencies_ns=[1, -2, 3]), "latencies_ns"),
        (_output(latencies_ns=[1.5, 2, 3]), "latencies_ns"),
        (_output(cpu_s="0.5"), "'cpu_s' is not a number"),
        (_output(errors=True), "'errors' is not a number"),
        (_output(window_s=None), "'window_s' is not a number"),
    ],
)
def test_parse_output_refuses_what_is_not_a_result(text: str, why: str) -> None:
    with pytest.raises(GeneratorOutputError, match=why):
        parse_output(text)


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_generator.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_run_generator_reads_what_a_generator_prints(tmp_path: Path) -> None:
    cmd = _script(tmp_path, f"print({_output()!r})\n")
    assert run_generator(cmd, timeout_s=60).ok == 3


def test_run_generator_failure_is_an_oserror_with_its_stderr(tmp_path: Path) -> None:
    cmd = _script(tmp_path, "import sys\nsys.stderr.write('cannot connect')\nsys.exit(1)\n")
    with pytest.raises(OSError, match="exited 1: cannot connect"):
        run_generator(cmd, timeout_s=60)


def test_run_generator_garbage_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="not JSON"):
        run_generator(_script(tmp_path, "print('hello')\n"), timeout_s=60)


def test_missing_generator_names_the_setup_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETCD_LOAD_BIN", str(tmp_path / "absent"))
    with pytest.raises(SystemFailed, match=r"bench/setup\.sh"):
        generator_binary()
    built = tmp_path / "etcd_load"
    built.write_text("#!/bin/sh\n")
    built.chmod(built.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("ETCD_LOAD_BIN", str(built))
    assert generator_binary() == built


def test_runner_sends_etcd_points_to_the_go_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, ...]] = []

    def fake_measure(*args: object) -> RawRun:
        seen.append(args)
        return RawRun(ok=1, latencies_s=[0.001], window_s=4.0)

    monkeypatch.setattr(runner.etcd_grpc, "measure", fake_measure)
    config = config_from_args(["--systems", "etcd", "--duration", "4", "--warmup", "1"])
    raw = runner.measure(TARGET, "write", 16, config)
    assert raw.ok == 1
    assert seen == [(TARGET, "write", 16, 4.0, 1.0)]


def test_etcd_member_command_plain_is_http() -> None:
    cmd = member_command("e0", Path("/d"), 1, 2, "e0=http://127.0.0.1:2")
    assert "--listen-client-urls=http://127.0.0.1:1" in cmd
    assert not any("cert" in arg for arg in cmd)


def test_etcd_member_command_with_tls_requires_client_certificates() -> None:
    tls = ClusterTLS(Path("/c/ca.pem"), {"e0": (Path("/c/e0.pem"), Path("/c/e0.key"))})
    cmd = member_command("e0", Path("/d"), 1, 2, "e0=https://127.0.0.1:2", tls)
    assert "--listen-client-urls=https://127.0.0.1:1" in cmd
    assert "--listen-peer-urls=https://127.0.0.1:2" in cmd
    assert "--client-cert-auth" in cmd and "--peer-client-cert-auth" in cmd
    assert "--trusted-ca-file=/c/ca.pem" in cmd and "--peer-trusted-ca-file=/c/ca.pem" in cmd
    assert "--cert-file=/c/e0.pem" in cmd and "--peer-key-file=/c/e0.key" in cmd


def test_tls_option_adds_each_systems_tls_variant_after_it() -> None:
    assert parse_systems("resonetics,etcd,pysyncobj", tls=True) == [
        "resonetics",
        "resonetics-tls",
        "etcd",
        "etcd-tls",
        "pysyncobj",
    ]
    assert parse_systems("etcd-tls,etcd", tls=True) == ["etcd-tls", "etcd"]
    assert config_from_args(["--systems", "etcd", "--tls"]).systems == ["etcd", "etcd-tls"]
    assert config_from_args(["--systems", "etcd"]).systems == ["etcd"]


def test_gateway_is_its_own_system_never_plain_etcd() -> None:
    assert parse_systems("etcd-gateway") == ["etcd-gateway"]
    assert "etcd-gateway" not in config_from_args([]).systems


def _report() -> Report:
    report = Report(config={}, machine={})
    for system, ok in (
        ("resonetics", 2000),
        ("resonetics-tls", 1000),
        ("resonetics-client", 500),
        ("etcd", 1000),
        ("etcd-tls", 2000),
        ("etcd-gateway", 500),
    ):
        raw = RawRun(ok=ok, latencies_s=[0.001], window_s=1.0)
        report.points.append(Point.from_raw(system, "write", 256, raw))
    return report


def test_tls_rows_are_divided_into_each_other_only() -> None:
    report = _report()
    pairs = ratio_pairs(report)
    assert ("resonetics-tls", "etcd-tls") in pairs
    assert ("resonetics", "etcd") in pairs and ("resonetics", "etcd-gateway") in pairs
    assert ("resonetics", "etcd-tls") not in pairs
    assert ("resonetics-client", "resonetics") in pairs
    rows = dict(zip(pairs, ratio_rows(report)[0][2:], strict=True))
    assert rows[("resonetics", "etcd")] == "2.00"
    assert rows[("resonetics-tls", "etcd-tls")] == "0.50"
    assert rows[("resonetics-client", "resonetics")] == "0.25"
    md = render_markdown(report)
    assert "resonetics-tls ÷ etcd-tls" in md and "÷ etcd-gateway" in md
    assert "resonetics-tls/etcd-tls" in report.to_dict()["ratios"]


def test_signed_variant_starts_nodes_with_a_registry_of_their_own_keys(tmp_path: Path) -> None:
    assert cluster_extra_args(tmp_path, signed=False) == []
    args = cluster_extra_args(tmp_path, signed=True)
    assert args[0] == "--trust-registry"
    registry = Path(args[1]).read_text()
    for node in ("n1", "n2", "n3"):
        assert f'"{node}" = "ed25519:' in registry
