"""Bounded torture runs on real processes: every fault kind on a 3-node and a 5-node cluster.

Each run starts real ``resonetics serve`` processes behind the harness's proxies,
injects every fault kind (kill -9, SIGSTOP/SIGCONT, isolation, majority/minority
split, bridge, one-way cut, delay, torn log tail) while clients write, and passes
only if the history is linearizable, the nodes converge and verify, and no node
crashed on its own. The seeds are fixed so that a failure here can be replayed
with ``resonetics torture --seed N``. Pass/fail never depends on timing: the
checks are on what happened, not on how fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resonetics.check.history import load_history
from resonetics.torture import FAULT_KINDS, TortureOptions, run_torture

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("nodes", "seed", "overlap_p"),
    [
        (3, 101, 0.3),
        (5, 202, 0.3),
        # Every fault joined by one of the other family: a kill during a partition,
        # a torn log on a node cut off from the others, a pause during a bridge...
        (3, 303, 1.0),
    ],
)
def test_every_fault_kind_leaves_a_linearizable_history_and_converged_nodes(
    tmp_path: Path, nodes: int, seed: int, overlap_p: float
) -> None:
    # Each round of the schedule is a permutation of all kinds; ~2.5 s per fault on
    # average, so 30 s always completes the first round.
    result = run_torture(
        TortureOptions(
            seed=seed,
            out=tmp_path,
            nodes=nodes,
            time_s=30.0,
            hold_s=(1.0, 2.5),
            quiet_s=(0.3, 1.0),
            overlap_p=overlap_p,
        )
    )
    assert result.ok, "\n".join(result.failures) + f"\nartefacts in {tmp_path}"
    summary = result.summary
    assert set(summary["faults"]) == set(FAULT_KINDS)
    assert summary["ops"]["ok"] > 0
    assert summary["checker"]["verdict"] == "linearizable"
    assert summary["converged"] is not None
    assert set(summary["final_values"]) == {f"k{i}" for i in range(5)}
    # The artefacts a failure would be studied with are all there and readable.
    assert len(load_history(tmp_path / "history.jsonl")) == summary["checker"]["ops"]
    faults = [json.loads(line) for line in (tmp_path / "nemesis.jsonl").read_text().splitlines()]
    assert {e["fault"] for e in faults} >= set(FAULT_KINDS)
    assert json.loads((tmp_path / "summary.json").read_text())["seed"] == seed
    for node in range(1, nodes + 1):
        assert (tmp_path / "data" / f"n{node}.log").exists()
