"""Simulated watchers: streams served by the shipped hub under faults, checked against the
committed log at the end of each seed, and a dropped event is caught."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from resonetics.server.watch import WatchHub
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed

WATCHED = SimOptions(watchers=3)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_watch_streams_under_faults_match_the_committed_log(seed: int) -> None:
    result = run_seed(seed, WATCHED)
    assert result.ok, result.failure
    assert result.counters["watch_events"] > 0
    assert result.counters["watch_resumes"] > 0  # crashes moved watchers between nodes


def test_watchers_keep_the_run_deterministic() -> None:
    assert run_seed(4, WATCHED).digest == run_seed(4, WATCHED).digest


def test_the_simulator_catches_a_hub_that_drops_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    original = WatchHub._send_events
    dropped: list[int] = []

    def lossy(self: WatchHub, watch: Any, parts: list[msgspec.Raw]) -> None:
        if not dropped and len(parts) > 1:
            dropped.append(1)
            parts = parts[1:]
        original(self, watch, parts)

    monkeypatch.setattr(WatchHub, "_send_events", lossy)
    results = [run_seed(seed, WATCHED) for seed in (1, 2, 3)]
    failed = [r for r in results if not r.ok]
    assert dropped and failed
    assert "watch stream" in (failed[0].failure or "") and "gap" in (failed[0].failure or "")
