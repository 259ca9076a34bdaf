"""``resonetics sim`` from the command line: exit status and summary."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.sim import invariants


def test_one_seed_passes_and_prints_a_summary() -> None:
    out = CliRunner().invoke(main, ["sim", "--seed", "2", "--time", "1"])
    assert out.exit_code == 0, out.output
    assert "1 run(s)" in out.output and "0 failed" in out.output
    assert "elections" in out.output and "ops checked" in out.output


def test_several_seeds_with_chosen_faults() -> None:
    args = ["sim", "--seeds", "2", "--first", "5", "--nodes", "5", "--faults", "drop,crash"]
    out = CliRunner().invoke(main, [*args, "--time", "0.5"])
    assert out.exit_code == 0, out.output
    assert "2 run(s) [nodes=5 faults=drop,crash" in out.output


def test_unknown_fault_kind_is_a_usage_error() -> None:
    out = CliRunner().invoke(main, ["sim", "--seed", "1", "--faults", "meteor"])
    assert out.exit_code == 2
    assert "meteor" in out.output


def test_a_failing_seed_exits_non_zero_with_its_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    def always(self: invariants.SafetyMonitor, node: str, term: int, hash_at: object) -> None:
        raise invariants.SimViolation("planted violation")

    monkeypatch.setattr(invariants.SafetyMonitor, "on_leader", always)
    out = CliRunner().invoke(main, ["sim", "--seed", "9", "--time", "0.5"])
    assert out.exit_code == 1
    assert "seed 9 FAILED" in out.output and "planted violation" in out.output
    assert "failing seeds: 9" in out.output
