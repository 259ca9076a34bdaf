"""The nemesis: its schedule is a function of the seed, every kind is met, and it heals."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path
from typing import Any

from resonetics.localcluster import LocalCluster
from resonetics.torture.nemesis import FAULT_KINDS, PROCESS_FAULTS, Nemesis, NemesisOptions
from resonetics.torture.proxy import ProxyMesh


class _FakeCluster(LocalCluster):
    """Records process control instead of running processes."""

    actions: list[tuple[str, str]]

    def start_node(self, node_id: str) -> None:
        self.actions.append(("start", node_id))

    def kill_node(self, node_id: str) -> None:
        self.actions.append(("kill", node_id))

    def signal_node(self, node_id: str, sig: signal.Signals) -> None:
        self.actions.append((sig.name, node_id))


def _nemesis(
    tmp_path: Path, seed: int, size: int = 3, overlap_p: float = 0.3
) -> tuple[Nemesis, _FakeCluster]:
    cluster = _FakeCluster(tmp_path / "data", size=size)
    cluster.actions = []
    for node_id in cluster.nodes:
        (tmp_path / "data" / node_id).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / node_id / "log.jsonl").write_bytes(b'{"index":0}\n{"index":1}\n')
    mesh = ProxyMesh({n: node.address for n, node in cluster.nodes.items()})
    options = NemesisOptions(hold_s=(0.0, 0.001), quiet_s=(0.0, 0.001), overlap_p=overlap_p)
    return Nemesis(cluster, mesh, random.Random(seed), options), cluster


def _run(nemesis: Nemesis, faults: int) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(nemesis.run())
        while sum(nemesis.counts.values()) < faults:
            await asyncio.sleep(0.001)
        while nemesis.log[-1]["phase"] != "end":
            await asyncio.sleep(0.001)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def _shape(log: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(sorted((k, str(v)) for k, v in e.items() if k != "time")) for e in log]


def test_one_seed_gives_one_fault_sequence(tmp_path: Path) -> None:
    a, cluster_a = _nemesis(tmp_path / "a", seed=11)
    b, cluster_b = _nemesis(tmp_path / "b", seed=11)
    _run(a, 2 * len(FAULT_KINDS))
    _run(b, 2 * len(FAULT_KINDS))
    faults_a = [e for e in _shape(a.log) if ("fault", "heal_all") not in e]
    faults_b = [e for e in _shape(b.log) if ("fault", "heal_all") not in e]
    n = min(len(faults_a), len(faults_b))
    assert n >= 2 * len(FAULT_KINDS)
    assert faults_a[:n] == faults_b[:n]
    n = min(len(cluster_a.actions), len(cluster_b.actions))
    assert cluster_a.actions[:n] == cluster_b.actions[:n]


def test_each_round_meets_every_fault_kind_once(tmp_path: Path) -> None:
    nemesis, _ = _nemesis(tmp_path, seed=3, size=5, overlap_p=0.0)
    _run(nemesis, len(FAULT_KINDS))
    starts = [e["fault"] for e in nemesis.log if e["phase"] == "start"]
    assert sorted(starts[: len(FAULT_KINDS)]) == sorted(FAULT_KINDS)


def test_an_overlapping_fault_joins_one_process_fault_with_one_network_fault(
    tmp_path: Path,
) -> None:
    nemesis, _ = _nemesis(tmp_path, seed=4, size=5, overlap_p=1.0)
    _run(nemesis, 2 * len(FAULT_KINDS))
    active: list[str] = []
    for event in nemesis.log:
        if event["phase"] == "start":
            active.append(event["fault"])
            families = [kind in PROCESS_FAULTS for kind in active]
            assert len(active) <= 2 and families.count(True) <= 1 and families.count(False) <= 1
        elif event["fault"] in active:
            active.remove(event["fault"])
    assert sum(nemesis.counts.values()) >= 2 * len(FAULT_KINDS)


def test_cancelling_heals_the_network_resumes_and_restarts_everything(tmp_path: Path) -> None:
    nemesis, cluster = _nemesis(tmp_path, seed=5)
    _run(nemesis, 3 * len(FAULT_KINDS))
    assert not nemesis.down and not nemesis.paused
    assert nemesis.mesh.cut_pairs() == []
    assert all(link.delay_s == 0 for link in nemesis.mesh.links.values())
    kills = sum(1 for action, _ in cluster.actions if action == "kill")
    starts = sum(1 for action, _ in cluster.actions if action == "start")
    assert kills == starts == nemesis.counts["kill"] + nemesis.counts["corrupt"]
    stops = [n for action, n in cluster.actions if action == "SIGSTOP"]
    conts = [n for action, n in cluster.actions if action == "SIGCONT"]
    assert sorted(stops) == sorted(conts)


def test_a_corrupt_fault_tears_the_stopped_nodes_log_before_restarting_it(tmp_path: Path) -> None:
    nemesis, cluster = _nemesis(tmp_path, seed=9)
    nemesis.options.faults = ("corrupt",)
    _run(nemesis, 1)
    start = next(e for e in nemesis.log if e["fault"] == "corrupt" and e["phase"] == "start")
    victim = start["nodes"][0]
    assert cluster.actions[:2] == [("kill", victim), ("start", victim)]
    log = (tmp_path / "data" / victim / "log.jsonl").read_bytes()
    assert log.startswith(b'{"index":0}\n{"index":1}\n') and len(log) > 24
