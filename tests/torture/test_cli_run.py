"""``resonetics torture`` as an operator runs it: progress lines, a run that ends about
when ``--time`` says, Ctrl-C that winds down and prints the summary, ``--base-port``,
and a wind-down that stays bounded when the cluster never comes back."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resonetics.check.history import HistoryRecorder
from resonetics.localcluster import LocalCluster
from resonetics.torture.harness import TortureOptions, _Run, check_time_limit
from resonetics.torture.monitor import Monitor
from resonetics.torture.nemesis import Nemesis, NemesisOptions
from resonetics.torture.proxy import ProxyMesh
from resonetics.torture.workload import Workload, WorkloadOptions

pytestmark = pytest.mark.slow

#: How much longer than ``--time`` a small run may take here: the first election, the
#: bounded wind-down, stopping three processes and the check, on a loaded 2-core box.
WIND_DOWN_ALLOWANCE_S = 120.0


def _free_base_port() -> int:
    """A port P with P..P+2 and P+100..P+102 free right now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base > 60000:
            continue
        ports = [base + i for i in range(3)] + [base + 100 + i for i in range(3)]
        socks = []
        try:
            for port in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no free port range")


def _torture(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "resonetics", "torture", "--out", str(out), "--seed", "5", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_torture_time_ends_within_a_bounded_wind_down_with_progress_and_summary(
    tmp_path: Path,
) -> None:
    """``--time 20`` once ran 514 s: each wind-down wait sat out its own minute, then
    the checker its five. Now one budget bounds the wind-down and the checker's limit
    follows ``--time``."""
    base = _free_base_port()
    started = time.monotonic()
    proc = _torture(tmp_path, "--time", "5", "--clients", "3", "--base-port", str(base))
    out, _ = proc.communicate(timeout=5 + WIND_DOWN_ALLOWANCE_S)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out
    assert elapsed < 5 + WIND_DOWN_ALLOWANCE_S
    assert "faults and load: ops" in out  # progress lines, by phase
    assert "last check:" in out
    assert "summary:" in out and "verdict: PASS" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["phases_s"]["faults and load"] == pytest.approx(5, abs=3)
    assert summary["interrupted"] is False
    # The nodes served on the ports asked for.
    log = (tmp_path / "data" / "n1.log").read_text()
    assert f"clients on 127.0.0.1:{base}" in log
    assert f"peers on 127.0.0.1:{base + 100}" in log


def test_ctrl_c_ends_the_faults_winds_down_and_prints_the_summary(tmp_path: Path) -> None:
    proc = _torture(tmp_path, "--time", "600", "--clients", "3")
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        lines.append(line)
        if "faults and load" in line or time.monotonic() > deadline:
            break
    assert any("faults and load" in line for line in lines), "".join(lines)
    interrupted_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=WIND_DOWN_ALLOWANCE_S)
    assert time.monotonic() - interrupted_at < WIND_DOWN_ALLOWANCE_S
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert "summary (interrupted by Ctrl-C):" in out
    assert "checker:" in out and "verdict:" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["phases_s"]["faults and load"] < 60
    # Every node was stopped: no process of the run is left behind.
    assert all(code is not None for code in summary["exit_codes"].values())


def test_the_wind_down_is_one_budget_when_the_cluster_never_comes_back(tmp_path: Path) -> None:
    """No node ever answers: the leader wait, final reads and convergence share the budget."""
    cluster = LocalCluster(tmp_path / "data", size=3)  # never started: nothing listens
    mesh = ProxyMesh({n: node.peer_address for n, node in cluster.nodes.items()})
    recorder = HistoryRecorder()
    nemesis = Nemesis(cluster, mesh, random.Random(1), NemesisOptions(("kill",), (1, 1), (1, 1)))
    monitor = Monitor(cluster, expected_down=set)
    workload = Workload(
        {n: node.address for n, node in cluster.nodes.items()},
        recorder,
        random.Random(2),
        WorkloadOptions(keys=3, clients=1),
    )
    options = TortureOptions(seed=1, out=tmp_path, time_s=1, settle_s=0, wind_down_s=3.0)
    run = _Run(options, cluster, mesh, nemesis, monitor, workload)

    async def wind_down() -> float:
        run._wind_down_ends = asyncio.get_running_loop().time() + options.wind_down_s
        began = time.monotonic()
        await run._wait_for_leader(run._wait_s(60))
        run.final_values = await workload.final_reads(run._wait_s(60))
        run.converged = await run._converge(run._wait_s(60))
        return time.monotonic() - began

    took = asyncio.run(wind_down())
    assert run.converged is None and run.final_values == {}
    # The budget plus at most one attempt's own timeout past it, not 3 x 60 s.
    assert took < options.wind_down_s + 8


def test_the_checker_limit_follows_the_run_length() -> None:
    assert check_time_limit(20) == 30
    assert check_time_limit(120) == 120
    assert check_time_limit(3600) == 300
