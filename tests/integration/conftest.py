"""Fixtures that run real ``resonetics serve`` processes on free loopback ports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from resonetics.localcluster import LocalCluster, free_ports


def running_cluster(
    data_dir: Path, size: int, extra_args: Sequence[str] = ()
) -> Iterator[LocalCluster]:
    """A started cluster with a leader (``extra_args``: more ``serve`` flags for every
    node); on the way out, stopped and checked for crashes."""
    cluster = LocalCluster(data_dir, size=size, tick_ms=20, extra_args=list(extra_args))
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path / "data", 3)


@pytest.fixture
def single_node(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path / "data", 1)


def _assert_no_crash(cluster: LocalCluster) -> None:
    """Every node that was still running stopped cleanly; a traceback in a log is a crash."""
    for node_id in cluster.nodes:
        log = (cluster.data_dir / f"{node_id}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{node_id} crashed:\n{log[-3000:]}"


#: A refused start must end at once, not after an election timeout, seconds.
REFUSAL_TIMEOUT_S = 30.0


def serve_once(data_dir: Path, node_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``resonetics serve`` of one node on ``data_dir``, for a start that must be refused:
    waited for, its output captured."""
    port, client_port = free_ports(2)
    command = [
        sys.executable,
        "-m",
        "resonetics",
        "serve",
        "--id",
        node_id,
        "--peers",
        f"{node_id}=127.0.0.1:{port}",
        "--clients",
        f"{node_id}=127.0.0.1:{client_port}",
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal's one line on stderr (and no traceback)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
