"""Simulated runs with membership changes and leadership transfers mixed into the faults."""

from __future__ import annotations

import pytest

from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed

#: Seeds run in CI; ``resonetics sim`` and the sweep tests run more without churn.
CHURN_SEEDS = range(6)


@pytest.mark.parametrize("seed", CHURN_SEEDS)
def test_safety_holds_across_configurations_under_faults(seed: int) -> None:
    # Election safety, log matching, leader completeness and "no acknowledged write
    # lost" are checked after every step across every configuration; at the end every
    # node is a voter again, follows one leader and holds the same state.
    result = run_seed(seed, SimOptions(membership_churn=True))
    result.raise_for_failure()
    assert result.ops_ok > 0


def test_churn_really_changes_membership_and_leaders() -> None:
    totals = {"transfers": 0, "config_changes_committed": 0}
    for seed in CHURN_SEEDS:
        counters = run_seed(seed, SimOptions(membership_churn=True)).counters
        for key in totals:
            totals[key] += counters[key]
    assert totals["transfers"] > 0
    assert totals["config_changes_committed"] > 0


def test_churn_runs_are_reproducible() -> None:
    options = SimOptions(membership_churn=True)
    assert run_seed(3, options).digest == run_seed(3, options).digest
