"""The simulator's lease clients and checks (sim/lease_client.py, sim/lease_checks.py)."""

from __future__ import annotations

import pytest

from resonetics.sim.invariants import SimViolation
from resonetics.sim.lease_checks import LeaseMonitor
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import _World, run_seed


def test_lease_clients_grant_keep_alive_and_see_expiry_under_faults() -> None:
    world = _World(3, SimOptions(lease_clients=4))
    world.run()
    leases = world.cluster.monitor.leases
    assert sum(c.granted for c in world.lease_clients) >= 4
    assert sum(c.kept for c in world.lease_clients) >= 4
    assert leases.ended >= 2  # some expired (or were revoked) during the run
    leases.check_no_early_expiry()
    assert run_seed(3, SimOptions(lease_clients=4)).verdict == "linearizable"


def test_replicas_ending_different_leases_at_one_index_is_a_violation() -> None:
    monitor = LeaseMonitor()
    monitor.on_applied("n1", 7, (2,), 100)
    monitor.on_applied("n2", 7, (2,), 130)
    monitor.on_applied("n1", 8, (), 140)
    with pytest.raises(SimViolation, match="lease expiry differs between replicas at index 8"):
        monitor.on_applied("n3", 8, (5,), 150)


def test_a_lease_ending_before_its_last_promise_is_a_violation() -> None:
    monitor = LeaseMonitor()
    monitor.promise(4, 1_000)
    monitor.promise(4, 1_500)  # a later keep-alive
    monitor.on_applied("n1", 9, (4,), 1_400)
    with pytest.raises(SimViolation, match="lease 4 ended at index 9"):
        monitor.check_no_early_expiry()
    monitor.revoked.add(4)  # its client revoked it: ending early is what it asked for
    monitor.check_no_early_expiry()
