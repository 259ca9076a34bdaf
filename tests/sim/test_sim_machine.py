"""``resonetics sim --machine``: the simulator on a user's machine — the replicas'
states compared at every applied index and the history checked against its model."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed

STRUCTURES = "resonetics.machine.structures"
PLANTED = "tests.machine.nondeterministic"


def test_sim_machine_counter_passes_twenty_seeds() -> None:
    out = CliRunner().invoke(main, ["sim", "--machine", f"{STRUCTURES}:Counter", "--seeds", "20"])
    assert out.exit_code == 0, out.output
    assert "20 run(s)" in out.output and "0 failed" in out.output
    assert f"machine={STRUCTURES}:Counter" in out.output


@pytest.mark.parametrize("structure", ["Dict", "Set", "Queue", "Lock"])
def test_sim_machine_structures_pass_with_faults(structure: str) -> None:
    for seed in (3, 4):
        result = run_seed(seed, SimOptions(machine=f"{STRUCTURES}:{structure}"))
        assert result.ok, result.report()
        assert result.ops > 60 and result.elections >= 1  # real work, faults and all


def test_sim_machine_runs_a_hand_written_state_machine_with_args_from_its_struct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "examples"))
    result = run_seed(2, SimOptions(machine="counter:make"))
    assert result.ok, result.report()
    assert result.ops > 60 and result.verdict.startswith("ok (no model")


def test_sim_machine_model_check_covers_the_history() -> None:
    result = run_seed(5, SimOptions(machine=f"{STRUCTURES}:Counter"))
    assert result.ok and result.verdict == "ok" and result.ops > 60


def test_sim_machine_catches_a_nondeterministic_machine_with_a_divergence_message() -> None:
    out = CliRunner().invoke(main, ["sim", "--machine", f"{PLANTED}:InstanceId", "--seed", "1"])
    assert out.exit_code == 1
    assert "replicas diverge: after applying index" in out.output
    assert "(stamp {})" in out.output and "not deterministic" in out.output
    assert f"--machine {PLANTED}:InstanceId" in out.output  # the replay command


def test_sim_machine_model_check_catches_a_history_its_model_cannot_explain() -> None:
    result = run_seed(1, SimOptions(machine=f"{PLANTED}:ForgetfulModelCounter"))
    assert not result.ok and result.failure is not None
    assert "not linearizable against the machine's model" in result.failure


def test_sim_machine_that_cannot_be_loaded_is_a_usage_error() -> None:
    out = CliRunner().invoke(main, ["sim", "--machine", "no_such_module:make", "--seed", "1"])
    assert out.exit_code == 2
    assert "cannot import 'no_such_module'" in out.output


def test_sim_machine_with_key_value_readers_is_a_usage_error() -> None:
    args = ["sim", "--machine", f"{STRUCTURES}:Dict", "--readers", "2", "--seed", "1"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2 and "not with --machine" in out.output


def test_sim_machine_runs_with_batched_writes_and_churn() -> None:
    options = SimOptions(
        machine=f"{STRUCTURES}:Lock", batch_writes=True, membership_churn=True, fault_ms=2_000
    )
    result = run_seed(7, options)
    assert result.ok, result.report()


def test_sim_machine_run_is_reproducible_from_its_seed() -> None:
    options = SimOptions(machine=f"{STRUCTURES}:Queue", fault_ms=2_000)
    first, again = run_seed(11, options), run_seed(11, options)
    assert first.ok and first.digest == again.digest and first.ops == again.ops
    assert run_seed(12, options).digest != first.digest
