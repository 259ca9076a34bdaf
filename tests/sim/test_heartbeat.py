"""The leaders' heartbeat period: drawn per seed between the server's default (every second
tick) and a slower leader (every third tick), or pinned by the options."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner

from resonetics.cli import main
from resonetics.server.config import ServerConfig
from resonetics.sim.options import HEARTBEAT_TICKS_CHOICES, SimOptions, heartbeat_ticks_for
from resonetics.sim.runner import _World, run_seed
from resonetics.sim.sweep import run_seeds

SHORT = SimOptions(fault_ms=1_500, quiet_ms=4_500)


def test_the_choices_are_the_servers_default_and_a_slower_leader() -> None:
    default = {f.name: f.default for f in dataclasses.fields(ServerConfig)}["heartbeat_ticks"]
    assert (default, default + 1) == HEARTBEAT_TICKS_CHOICES


def test_a_sweep_runs_both_heartbeat_periods() -> None:
    summary = run_seeds(range(12), SHORT)
    assert not summary.failed, [r.report() for r in summary.failed]
    for ticks in HEARTBEAT_TICKS_CHOICES:
        assert summary.coverage_runs[f"run: heartbeat every {ticks} tick(s)"] > 0, ticks


def test_every_node_of_a_run_uses_the_period_it_reports() -> None:
    for seed in range(4):
        world = _World(seed, SHORT)
        world.run()
        periods = {
            node.driver.config.heartbeat_ticks
            for node in world.cluster.nodes.values()
            if node.driver is not None
        }
        assert periods == {world.cluster.heartbeat_ticks}
        assert run_seed(seed, SHORT).heartbeat_ticks == world.cluster.heartbeat_ticks


def test_a_pinned_period_is_kept_and_named_in_the_replay_command() -> None:
    options = SimOptions(fault_ms=1_500, quiet_ms=4_500, heartbeat_ticks=2, plant="lost-wakeup")
    result = run_seed(1, SimOptions(fault_ms=1_500, quiet_ms=4_500, heartbeat_ticks=2))
    assert result.ok and result.heartbeat_ticks == 2
    failed = run_seed(1, options)
    assert not failed.ok
    assert "--heartbeat-ticks 2" in failed.report()


def test_a_drawn_period_is_named_in_a_failure_report() -> None:
    failed = run_seed(1, SimOptions(fault_ms=1_500, quiet_ms=4_500, plant="lost-wakeup"))
    assert not failed.ok
    assert f"heartbeat every {failed.heartbeat_ticks} tick(s)" in failed.report()
    assert "--heartbeat-ticks" not in failed.report()  # the seed draws it again


def test_cli_refuses_a_heartbeat_period_not_below_the_election_timeout() -> None:
    out = CliRunner().invoke(main, ["sim", "--seed", "1", "--heartbeat-ticks", "10"])
    assert out.exit_code == 2
    assert "--heartbeat-ticks" in out.output and "0<=x<=9" in out.output


def test_cli_names_the_period_a_single_seed_drew() -> None:
    for seed in range(4):
        drawn = run_seed(seed, SimOptions(fault_ms=500, quiet_ms=4_500)).heartbeat_ticks
        assert heartbeat_ticks_for(seed, SimOptions()) == drawn
        out = CliRunner().invoke(main, ["sim", "--seed", str(seed), "--time", "0.5"])
        assert out.exit_code == 0, out.output
        assert f"heartbeat every {drawn} tick(s)]" in out.output
