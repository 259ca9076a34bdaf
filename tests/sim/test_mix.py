"""``resonetics sim --mix``: one sweep spread over every mode (``sim/mix.py``)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.planted import Bug
from resonetics.sim.mix import MODES, MixConflict, check_base, mixed, mode_of
from resonetics.sim.options import FAULT_KINDS, SimOptions
from resonetics.sim.runner import run_seed
from resonetics.sim.sweep import run_seeds

#: Short faulty phases: these tests are about which run a seed is, not about the cluster.
SHORT = SimOptions(fault_ms=1_000)


def test_seed_n_runs_mode_n_modulo_the_number_of_modes() -> None:
    names = [mode_of(seed) for seed in range(2 * len(MODES))]
    assert names[: len(MODES)] == [name for name, _ in MODES]
    assert names[len(MODES) :] == names[: len(MODES)]
    assert len(set(names)) == len(MODES)


def test_each_mode_sets_its_own_options_on_top_of_the_base() -> None:
    base = dataclasses.replace(SHORT, clients=5, snapshot_entries=7)
    for seed, (name, changes) in enumerate(MODES):
        options = mixed(base, seed)
        for key, value in changes.items():
            assert getattr(options, key) == value, f"{name}: {key}"
        # What the mode does not set stays the base's: time, clients, snapshots.
        assert (options.fault_ms, options.clients, options.snapshot_entries) == (1_000, 5, 7)
    assert mixed(base, 0) == base  # the first mode is the base itself, faults included
    assert mixed(base, 2).adversary and mixed(base, 3).nodes == 5
    assert mixed(base, 7).faults == frozenset() and mixed(base, 7).scenario == "figure8"


def test_options_a_mode_would_override_are_refused_by_flag_name() -> None:
    check_base(SimOptions(faults=frozenset({"drop"}), fault_ms=2_000, clients=1))  # allowed
    with pytest.raises(MixConflict, match="--adversary, --nodes"):
        check_base(SimOptions(nodes=5, adversary=True))
    with pytest.raises(MixConflict, match="--machine"):
        check_base(SimOptions(machine="resonetics.machine.structures:Counter"))


def test_a_mixed_sweep_runs_every_mode_and_sees_what_plain_sweeps_miss() -> None:
    plain = run_seeds(range(len(MODES)), SHORT)
    mix = run_seeds(range(len(MODES)), SHORT, mix=True)
    assert mix.runs == len(MODES) and not mix.failed, [r.report() for r in mix.failed]
    for key in (
        "fault: adversary forged",
        "gate drop: sender outside the configuration",
        "role: transfer (TimeoutNow sent)",
    ):
        assert plain.coverage_runs[key] == 0, key  # a plain sweep never sees these...
        assert mix.coverage_runs[key] > 0, key  # ...the mixed one does
    assert all(mix.coverage_runs[f"fault: {kind}"] > 0 for kind in FAULT_KINDS)


def test_a_mixed_seed_is_the_same_run_alone_on_several_workers_and_by_its_flags() -> None:
    seeds = range(len(MODES))
    digests: list[tuple[int, str]] = []
    run_seeds(
        seeds,
        SHORT,
        workers=2,
        mix=True,
        digest=True,
        on_result=lambda r, _: digests.append((r.seed, r.digest)),
    )
    assert len(digests) == len(MODES) and all(digest for _, digest in digests)
    for seed, digest in digests:
        assert run_seed(seed, mixed(SHORT, seed)).digest == digest


def test_a_failing_mixed_seed_reports_flags_that_replay_it_without_mix() -> None:
    # Seed 2 runs the adversary mode; a planted bug makes it fail.
    options = dataclasses.replace(SHORT, plant=Bug.APPLY_BEFORE_COMMIT.value)
    failed = run_seeds([2], options, mix=True).failed
    assert len(failed) == 1
    replay = next(line for line in failed[0].report().splitlines() if line.startswith("replay:"))
    assert "--adversary" in replay and "--mix" not in replay
    flags = replay.split("resonetics sim ", 1)[1].split()
    result = CliRunner().invoke(main, ["sim", *flags])
    assert result.exit_code == 1, result.output  # the same run, failing the same way
    assert re.search(r"1 run\(s\) \[.* adversary", result.output)


def test_cli_mix_refuses_a_mode_flag_and_names_it() -> None:
    result = CliRunner().invoke(main, ["sim", "--seeds", "2", "--mix", "--churn"])
    assert result.exit_code == 2
    assert "--churn" in result.output and "Traceback" not in result.output


def test_cli_mix_summary_says_it_is_a_mix() -> None:
    result = CliRunner().invoke(
        main, ["sim", "--seeds", "3", "--first", "1", "--mix", "--time", "1", "--no-coverage"]
    )
    assert result.exit_code == 0, result.output
    assert f"mix of {len(MODES)} modes" in result.output


def test_cli_one_mixed_seed_names_its_mode_and_its_own_options() -> None:
    result = CliRunner().invoke(main, ["sim", "--seed", "2", "--mix", "--time", "1"])
    assert result.exit_code == 0, result.output
    assert "adversary mix mode 'adversary'" in result.output
