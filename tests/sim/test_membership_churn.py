"""Simulated runs with membership changes and leadership transfers mixed into the faults."""

from __future__ import annotations

import pytest

from resonetics.raft.entry import EntryType, make_entry
from resonetics.raft.membership import Membership
from resonetics.sim.invariants import SafetyMonitor, SimViolation
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


def test_referee_catches_promotion_of_a_learner_that_never_answered() -> None:
    """The simulator's check of the promotion rule fires on the bug it exists for: a
    CONFIG entry promoting a learner that never answered up to its ``catch_up_index``."""
    monitor = SafetyMonitor()
    added = Membership(voters=("a", "b", "c"), learners=("d",), catch_up_index={"d": 5})
    promoted = Membership(voters=("a", "b", "c", "d"), voters_outgoing=("a", "b", "c"), learners=())
    genesis_hash = "0" * 64
    add_entry = make_entry(genesis_hash, 1, 6, EntryType.CONFIG, added.to_data())
    promote_entry = make_entry(add_entry.hash, 1, 7, EntryType.CONFIG, promoted.to_data())
    monitor.on_append("a", genesis_hash, [add_entry])
    monitor.on_answer("d", 4)  # answered, but not up to the commit index at its add
    with pytest.raises(SimViolation, match="unsafe promotion: a holds CONFIG index 7"):
        monitor.on_append("a", add_entry.hash, [promote_entry])
    monitor.on_answer("d", 5)
    monitor.on_append("b", add_entry.hash, [promote_entry])  # now it is safe
