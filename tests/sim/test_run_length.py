"""How long a simulated run lasts: the must-succeed window opens once the cluster serves
again after the faults, and the drain ends early once the cluster has settled."""

from __future__ import annotations

from resonetics.sim.options import CLOCK_FACTOR_MAX, SimOptions
from resonetics.sim.runner import (
    DRAIN_MS,
    QUIET_CHECK_MS,
    QUIET_GRACE_TIMEOUTS,
    SETTLE_MS,
    _serving,
    _World,
    run_seed,
)


def _longest_timeout_ms(options: SimOptions) -> int:
    return int(2 * options.election_ticks * options.tick_ms * CLOCK_FACTOR_MAX)


def _end_ms(options: SimOptions, window_ms: int) -> int:
    """Where a run whose window opened at ``window_ms`` would end without the early end."""
    return window_ms + options.quiet_ms - SETTLE_MS


def test_a_run_ends_early_once_the_cluster_stays_settled_after_the_clients_stop() -> None:
    options = SimOptions()
    result = run_seed(0, options)
    result.raise_for_failure()
    end_ms = _end_ms(options, result.window_ms)
    grace_ms = QUIET_GRACE_TIMEOUTS * _longest_timeout_ms(options)
    assert end_ms - DRAIN_MS + grace_ms <= result.virtual_ms < end_ms, result.virtual_ms
    assert result.coverage["run: ended early, settled in the drain"] == 1


def test_the_window_opens_once_the_cluster_serves_and_never_after_the_settle_time() -> None:
    options = SimOptions()
    hold_ms = _longest_timeout_ms(options)
    windows = []
    for seed in range(8):
        result = run_seed(seed, options)
        result.raise_for_failure()
        # Never later than the fixed bound, never before the cluster served for a timeout.
        assert options.fault_ms + hold_ms <= result.window_ms <= options.fault_ms + SETTLE_MS
        early = result.window_ms < options.fault_ms + SETTLE_MS
        assert result.coverage["run: window opened early, cluster serving"] == int(early)
        windows.append(result.window_ms)
    assert min(windows) < options.fault_ms + SETTLE_MS  # it does open early


def test_the_whole_rest_of_the_run_moves_with_the_window() -> None:
    options = SimOptions()
    world = _World(3, options)
    world.run()
    window = world.window_ms
    assert world.workload.settle_ms == window  # operations from here on must succeed
    assert world.workload.stop_ms == window + options.quiet_ms - SETTLE_MS - DRAIN_MS
    assert world.end_ms == _end_ms(options, window)


def test_serving_needs_every_node_up_and_following_the_leader() -> None:
    world = _World(0, SimOptions(faults=frozenset(), clients=0))
    for node in world.cluster.nodes.values():
        world.cluster.start(node)
    assert not _serving(world)  # no leader yet
    world._run_until(1_000)
    assert _serving(world)
    world.cluster.crash(world.cluster.nodes["n2"])
    assert not _serving(world)


def test_runs_with_lease_clients_keep_the_fixed_window() -> None:
    options = SimOptions(lease_clients=1)
    result = run_seed(0, options)
    result.raise_for_failure()
    assert result.window_ms == options.fault_ms + SETTLE_MS


def test_a_client_left_waiting_keeps_the_run_going_to_its_end_and_fails_liveness() -> None:
    # A read woken only by an apply waits forever on a quiet cluster: the drain must not
    # end early around it, and the liveness check at the end must name it.
    options = SimOptions(
        plant="read-woken-only-by-apply", faults=frozenset({"delay"}), heartbeat_ticks=1
    )
    result = run_seed(9, options)  # a seed where a read is left waiting to the end
    assert not result.ok
    assert "liveness" in (result.failure or ""), result.failure
    assert result.virtual_ms > _end_ms(options, result.window_ms) - QUIET_CHECK_MS
    assert result.coverage["run: ended early, settled in the drain"] == 0


def test_runs_with_watchers_run_to_their_end() -> None:
    options = SimOptions(watchers=1)
    result = run_seed(0, options)
    result.raise_for_failure()
    assert result.virtual_ms == options.fault_ms + options.quiet_ms
