"""The catalogue of planted bugs (``resonetics/planted.py``): each is caught within its budget.

For every bug with a budget, a sweep runs seeds 0, 1, ... with the bug switched on
and must meet a failing run before the budget is spent; the failure must be one of
the referee's verdicts (a safety or liveness violation, or an always-on invariant
of the code under test), never an unrelated exception, and it must come from one
of the checks the entry names (``caught_by``). The same seeds pass with no bug on,
so the catch is the bug's doing. ``make soak`` runs the same sweeps with
``SOAK_FACTOR`` times the budgets.
"""

from __future__ import annotations

import functools
import os

import pytest

from resonetics import planted
from resonetics.planted import CATALOGUE, Bug, Planted
from resonetics.sim import runner
from resonetics.sim.invariants import SafetyMonitor, SimViolation
from resonetics.sim.observed import ObservedStorage
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import RunResult, run_seed
from resonetics.storage.fs import MemoryFileSystem
from resonetics.storage.node_storage import FileNodeStorage

#: ``make soak`` sets this to multiply every budget.
_FACTOR = int(os.environ.get("RESONETICS_PLANTED_FACTOR", "1"))

_CAUGHT = [p for p in CATALOGUE.values() if p.budget > 0]


def _options(entry: Planted, *, plant: bool) -> SimOptions:
    return SimOptions(plant=entry.bug.value if plant else "", **entry.options)


def _first_catch(entry: Planted) -> RunResult | None:
    """The first failing run of the entry's sweep (run once per session: two tests need it)."""
    return _first_catch_of(entry.bug)


@functools.cache
def _first_catch_of(bug: Bug) -> RunResult | None:
    entry = CATALOGUE[bug]
    for seed in range(entry.budget * _FACTOR):
        result = run_seed(seed, _options(entry, plant=True))
        if not result.ok:
            return result
    return None


def _is_referee_verdict(result: RunResult) -> bool:
    """A violation found by the simulator's checks, or the code's own invariant()."""
    failure = result.failure or ""
    return result.verdict == "violation" or failure.startswith("InvariantViolation")


@pytest.mark.parametrize("entry", _CAUGHT, ids=[p.bug.value for p in _CAUGHT])
def test_planted_bug_is_caught_within_its_budget(entry: Planted) -> None:
    caught = _first_catch(entry)
    assert caught is not None, (
        f"{entry.bug.value} ({entry.summary}) survived {entry.budget * _FACTOR} seeds"
    )
    assert _is_referee_verdict(caught), caught.report()
    failure = caught.failure or ""
    assert any(check in failure for check in entry.caught_by), caught.report()


@pytest.mark.parametrize("entry", _CAUGHT, ids=[p.bug.value for p in _CAUGHT])
def test_the_same_seeds_pass_without_the_bug(entry: Planted) -> None:
    caught = _first_catch(entry)
    assert caught is not None
    for seed in range(caught.seed + 1):
        run_seed(seed, _options(entry, plant=False)).raise_for_failure()


def test_every_bug_is_in_the_catalogue_with_a_budget_or_what_is_missing() -> None:
    assert set(CATALOGUE) == set(Bug)
    assert len(CATALOGUE) >= 12
    for entry in CATALOGUE.values():
        assert (entry.budget > 0) != bool(entry.missed), entry.bug
        assert entry.caught_by or entry.missed, entry.bug
        SimOptions(**entry.options)  # the options are valid


def test_no_bug_is_on_outside_a_planted_run() -> None:
    assert not any(planted.on(bug) for bug in Bug)
    with planted.switched_on(Bug.LOST_WAKEUP):
        assert planted.on(Bug.LOST_WAKEUP) and not planted.on(Bug.ACK_BEFORE_FSYNC)
    assert not planted.on(Bug.LOST_WAKEUP)


def test_a_run_switches_its_bug_off_again_even_when_it_fails() -> None:
    entry = CATALOGUE[Bug.SESSION_RESULTS_CROSSED]
    assert not run_seed(0, _options(entry, plant=True)).ok
    assert not planted.on(entry.bug)


def test_an_unknown_bug_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown planted bug 'lease-forever'.*lost-wakeup"):
        SimOptions(plant="lease-forever")


def test_a_lease_read_after_a_later_leader_was_elected_is_a_violation() -> None:
    """The lease's promise (dissertation §6.4.1): no other leader before it runs out."""
    monitor = SafetyMonitor()
    monitor.on_leader("n1", 2, {})
    monitor.on_lease_read("n1", 2)  # alone in its term and after: fine
    monitor.on_leader("n2", 3, {})
    with pytest.raises(SimViolation, match="lease read served by n1 as leader of term 2 after n2"):
        monitor.on_lease_read("n1", 2)


def test_a_message_storm_ends_the_run_as_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages that breed messages would never let the run end: the pending-event bound
    turns that into a verdict (shown with the bound lowered under a clean run's need)."""
    monkeypatch.setattr(runner, "EVENTS_PENDING_MAX", 5)
    result = run_seed(0, SimOptions(fault_ms=1_000))
    assert result.verdict == "violation"
    assert result.failure is not None and "message storm" in result.failure


def test_an_acknowledged_entry_missing_after_a_restart_is_a_violation() -> None:
    """An ack is a durability promise: the leader counts it toward a commit quorum."""
    monitor = SafetyMonitor()
    monitor.on_ack_sent("n2", 7)
    monitor.on_recovered("n2", 7)  # all there: fine
    with pytest.raises(SimViolation, match="acknowledged entry lost: n2 acknowledged index 7"):
        monitor.on_recovered("n2", 6)


def test_a_truncation_by_a_later_leader_releases_the_ack() -> None:
    """A later leader may overwrite what an earlier one was told: no false alarm then."""
    monitor = SafetyMonitor()
    monitor.on_ack_sent("n2", 7)
    monitor.on_truncate("n2", 5, {5: "e5", 6: "e6", 7: "e7"})
    monitor.on_recovered("n2", 4)


def test_a_truncation_that_cuts_a_committed_entry_is_a_violation() -> None:
    monitor = SafetyMonitor()
    monitor.on_commit("n1", 2, 5, {5: "e5"})
    monitor.on_truncate("n2", 6, {6: "other"})  # above the commit: fine
    with pytest.raises(SimViolation, match="truncation below the commit index: n2 cuts index 5"):
        monitor.on_truncate("n2", 5, {5: "e5", 6: "x"})


def test_the_loop_writing_the_log_while_the_disk_thread_has_a_job_is_a_storage_race() -> None:
    """One user of the log and snapshot files at a time (runtime/loop_plan.py rules 3, 5)."""
    storage = ObservedStorage(
        FileNodeStorage(MemoryFileSystem(), "/data/n1"), "n1", SafetyMonitor()
    )
    storage.load()
    storage.disk_jobs_queued = 1
    storage.on_disk_thread = True
    storage.truncate_from(1)  # the disk thread itself: fine
    storage.on_disk_thread = False
    with pytest.raises(SimViolation, match="storage race: n1's loop calls append"):
        storage.append([])


def test_an_unknown_scenario_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown scenario 'figure-9'.*figure8"):
        SimOptions(scenario="figure-9")


@pytest.mark.parametrize(
    "options",
    [
        SimOptions(faults=frozenset(), scenario="figure8", append_entries_max=1),
        SimOptions(faults=frozenset(), membership_churn=True, transfer_lag=True, readers=3),
    ],
    ids=["figure8", "transfer-lag"],
)
def test_targeted_scenarios_are_reproducible_and_pass_without_a_bug(options: SimOptions) -> None:
    first, again = run_seed(3, options), run_seed(3, options)
    first.raise_for_failure()
    assert first.digest == again.digest


def test_figure8_scenario_with_random_crashes_beside_it_never_starts_a_running_node() -> None:
    """Regression, seed 3: the random faults restarted the crashed node A before the
    scenario's own restart, and the scenario started it again (``assert not node.up``)."""
    run_seed(3, SimOptions(scenario="figure8")).raise_for_failure()


def test_revote_scenario_leaves_a_correct_cluster_safe_and_live() -> None:
    """The scenario only cuts power and links: without the bug every run passes, and it
    does cut voters (its rounds count the power cuts right after a granted vote)."""
    rounds = 0
    for seed in range(5):
        result = run_seed(seed, SimOptions(faults=frozenset({"delay"}), scenario="revote"))
        result.raise_for_failure()
        rounds += result.counters["scenario_rounds"]
    assert rounds > 0
