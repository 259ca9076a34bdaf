"""Fixtures that run real ``resonetics serve`` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from resonetics.localcluster import LocalCluster


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
