"""How long a simulated run lasts: the drain ends early once the cluster has settled."""

from __future__ import annotations

from resonetics.sim.options import SimOptions
from resonetics.sim.runner import DRAIN_MS, QUIET_CHECK_MS, QUIET_GRACE_TIMEOUTS, run_seed


def test_a_run_ends_early_once_the_cluster_stays_settled_after_the_clients_stop() -> None:
    options = SimOptions()
    result = run_seed(0, options)
    result.raise_for_failure()
    end_ms = options.fault_ms + options.quiet_ms
    grace_ms = QUIET_GRACE_TIMEOUTS * 2 * options.election_ticks * options.tick_ms
    assert end_ms - DRAIN_MS + grace_ms <= result.virtual_ms < end_ms, result.virtual_ms
    assert result.coverage["run: ended early, settled in the drain"] == 1


def test_a_client_left_waiting_keeps_the_run_going_to_its_end_and_fails_liveness() -> None:
    # A read woken only by an apply waits forever on a quiet cluster: the drain must not
    # end early around it, and the liveness check at the end must name it.
    options = SimOptions(plant="read-woken-only-by-apply", faults=frozenset({"delay"}))
    result = run_seed(1, options)  # a seed where a read is left waiting
    assert not result.ok
    assert "liveness" in (result.failure or ""), result.failure
    assert result.virtual_ms > options.fault_ms + options.quiet_ms - QUIET_CHECK_MS
    assert result.coverage["run: ended early, settled in the drain"] == 0


def test_runs_with_watchers_run_to_their_end() -> None:
    options = SimOptions(watchers=1)
    result = run_seed(0, options)
    result.raise_for_failure()
    assert result.virtual_ms == options.fault_ms + options.quiet_ms
