"""``resonetics bench`` passes its options, ``--tls`` included, to the harness unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.adapters import DEFAULT_SYSTEMS
from click.testing import CliRunner

from resonetics.commands import bench as bench_cmd


def _invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    seen: list[list[str]] = []

    def fake_call(cmd: list[str], **_: object) -> int:
        seen.append(cmd)
        return 0

    monkeypatch.setattr(bench_cmd.subprocess, "call", fake_call)
    result = CliRunner().invoke(bench_cmd.bench, [*args, "--out", str(tmp_path / "out")])
    return result.exit_code, seen[0] if seen else []


def test_tls_flag_reaches_the_harness(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, cmd = _invoke(monkeypatch, tmp_path, "--tls", "--systems", "resonetics,etcd")
    assert code == 0
    assert "--tls" in cmd and "--systems=resonetics,etcd" in cmd


def test_default_run_has_grpc_etcd_and_the_library_client_without_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, cmd = _invoke(monkeypatch, tmp_path)
    assert code == 0 and "--tls" not in cmd
    systems = next(a for a in cmd if a.startswith("--systems=")).split("=", 1)[1].split(",")
    assert "etcd" in systems and "resonetics-client" in systems
    assert "etcd-gateway" not in systems
    assert ",".join(systems) == DEFAULT_SYSTEMS  # the command and the harness agree
