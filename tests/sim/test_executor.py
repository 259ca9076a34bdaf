"""The simulator runs the loop the server runs: disk thread, input while a write is in
flight, snapshots in slices, and no lost wake-up (sim/executor.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from resonetics.raft.messages import Message
from resonetics.runtime.driver import NodeDriver
from resonetics.sim import executor as executor_module
from resonetics.sim.cluster import Cluster, SimNode
from resonetics.sim.executor import SimExecutor
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed

#: The seeds below were chosen for what their runs show, with a heartbeat every tick.
SHORT = SimOptions(fault_ms=1_500, quiet_ms=4_500, heartbeat_ticks=1)


def _executors(
    monkeypatch: pytest.MonkeyPatch, seed: int, options: SimOptions
) -> list[SimExecutor]:
    """Every executor of a passing run: each incarnation's, the ones lost in crashes too."""
    seen: list[SimExecutor] = []
    original = SimNode.lose_driver

    def lose(self: SimNode) -> None:
        if self.executor is not None:
            seen.append(self.executor)
        original(self)

    clusters: list[Cluster] = []
    init = Cluster.__init__

    def keep(self: Cluster, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        clusters.append(self)

    monkeypatch.setattr(SimNode, "lose_driver", lose)
    monkeypatch.setattr(Cluster, "__init__", keep)
    result = run_seed(seed, options)
    assert result.ok, result.report()
    seen.extend(n.executor for n in clusters[0].nodes.values() if n.executor is not None)
    return seen


def _loop_steps(monkeypatch: pytest.MonkeyPatch, seed: int, options: SimOptions) -> Counter[str]:
    seen: Counter[str] = Counter()
    for executor in _executors(monkeypatch, seed, options):
        seen.update(executor.steps)
    return seen


def test_the_simulator_takes_the_disk_thread_path_and_the_inline_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = _loop_steps(monkeypatch, 3, SHORT)
    assert steps["write-on-disk-thread"] > 0
    assert steps["write-inline"] > 0
    assert steps["no-write"] > 0


def test_a_snapshot_is_taken_in_slices_written_on_its_thread_and_compacted_on_the_disk_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = _loop_steps(monkeypatch, 3, SHORT)
    assert steps["start-snapshot"] > 0
    assert steps["snapshot-slice"] >= steps["write-snapshot-file"] > 0
    assert steps["write-snapshot-file"] >= steps["compact-log"] > 0
    assert steps["finish-snapshot"] > 0


def test_a_node_back_from_a_long_outage_reads_the_snapshot_before_installing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reading path runs in the simulator as on the server: started by the loop plan,
    a slice per event, and every install of the run was of a state read that way."""
    executors = _executors(monkeypatch, 0, SimOptions(faults=frozenset({"longdown"})))
    steps: Counter[str] = Counter()
    for executor in executors:
        steps.update(executor.steps)
    stats = [e.driver.snapshots.stats for e in executors]
    installed = sum(s.installed for s in stats)
    assert steps["read-snapshot"] > 0 and installed > 0
    assert sum(s.installed_read for s in stats) == installed


def test_messages_and_client_requests_arrive_while_a_write_is_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    during: Counter[str] = Counter()
    step, submit, tick = NodeDriver.step, NodeDriver.submit, NodeDriver.tick

    def tick_(self: NodeDriver) -> None:
        if self.write_in_flight:
            during["tick"] += 1
        tick(self)

    def step_(self: NodeDriver, msg: Message) -> None:
        if self.write_in_flight:
            during["message"] += 1
        step(self, msg)

    def submit_(self: NodeDriver, *args: Any, **kwargs: Any) -> None:
        if self.write_in_flight:
            during["request"] += 1
        submit(self, *args, **kwargs)

    monkeypatch.setattr(NodeDriver, "step", step_)
    monkeypatch.setattr(NodeDriver, "submit", submit_)
    monkeypatch.setattr(NodeDriver, "tick", tick_)
    monkeypatch.setattr(executor_module, "INLINE_ENTRIES_CHOICES", (0,))
    assert run_seed(3, SHORT).ok
    assert during["message"] > 0
    assert during["request"] > 0
    assert during["tick"] > 0


def test_a_power_cut_while_a_write_is_on_the_disk_thread_is_survived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write is lost whole (or kept, if it ran); the job's later events do nothing, the
    node restarts from its disk, and the run stays linearizable."""
    cuts: list[bool] = []
    power_cut = Cluster._power_cut

    def cut(self: Cluster, node: SimNode, why: str) -> None:
        if node.driver is not None:
            cuts.append(node.driver.write_in_flight)
        power_cut(self, node, why)

    monkeypatch.setattr(Cluster, "_power_cut", cut)
    monkeypatch.setattr(executor_module, "INLINE_ENTRIES_CHOICES", (0,))
    monkeypatch.setattr(executor_module, "DISK_LATENCY_MS", (5, 20))  # long enough to be hit
    options = SimOptions(fault_ms=3_000, quiet_ms=4_500, faults=frozenset({"crash"}))
    results = [run_seed(seed, options) for seed in range(3)]
    assert all(r.ok for r in results), [r.report() for r in results if not r.ok]
    assert any(cuts), f"no power cut hit a write in flight ({len(cuts)} cuts)"


def test_same_seed_same_run_through_the_disk_thread() -> None:
    options = SimOptions(fault_ms=1_500, quiet_ms=4_500, batch_writes=True, clients=5)
    first, second = run_seed(21, options), run_seed(21, options)
    assert first.ok and second.ok
    assert first.digest == second.digest
    assert (first.steps, first.counters) == (second.steps, second.counters)
    assert first.counters["loop: write-on-disk-thread"] > 0


def test_no_lost_wake_up_after_a_disk_thread_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Input stepped while a write was on the disk thread is handled when the write is
    done, not at the next tick (the server's ``_flush_done`` fix, run by the simulator):
    the cluster checks after every event that no loop went idle with work left."""
    monkeypatch.setattr(executor_module, "INLINE_ENTRIES_CHOICES", (0,))
    for options in (SHORT, SimOptions(fault_ms=1_500, quiet_ms=4_500, batch_writes=True)):
        result = run_seed(3, options)
        assert result.ok, result.report()


def test_a_planted_lost_wake_up_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop that does not go on after its disk write finishes fails the run, named."""
    monkeypatch.setattr(executor_module, "INLINE_ENTRIES_CHOICES", (0,))

    def forgetful(self: SimExecutor, then: Callable[[], None]) -> None:
        self.cluster.run(self.node, lambda _d: then(), process=False)

    monkeypatch.setattr(SimExecutor, "_resume", forgetful)
    result = run_seed(3, SHORT)
    assert result.verdict == "violation"
    assert result.failure is not None and "lost wake-up" in result.failure


def test_a_long_apply_goes_on_at_a_later_event_and_the_run_stays_correct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an apply budget of one entry per Ready, whatever commits several entries at
    once (a restart's replay, a follower catching up) is applied in slices, and the
    executor goes on at a later event, as the server yields to its loop between slices;
    the referees still pass the run."""
    from resonetics.sim import cluster as cluster_module

    config = cluster_module.RaftConfig
    monkeypatch.setattr(
        cluster_module,
        "RaftConfig",
        lambda **kw: config(**kw, apply_entries_max=1),
    )
    yields = sum(e.apply_yields for e in _executors(monkeypatch, 3, SHORT))
    assert yields > 0
