"""Seed sweeps on several processes (``sim/sweep.py``) and the coverage they report."""

from __future__ import annotations

import gc
import pickle
import re
import signal

import pytest
from click.testing import CliRunner

from resonetics.cli import main
from resonetics.sim import invariants, runner
from resonetics.sim.options import FAULT_KINDS, SimOptions, parse_faults
from resonetics.sim.runner import ROLE_CHANGES, RunResult, run_seed
from resonetics.sim.sweep import (
    SWEEP_GC_THRESHOLDS,
    SweepSummary,
    _init_worker,
    chunks,
    resolve_workers,
    run_seeds,
)

#: Short runs: these tests are about the sweep, not about the cluster.
SHORT = SimOptions(fault_ms=1_000)


def _fields(summary: SweepSummary) -> tuple[object, ...]:
    return (
        summary.runs,
        summary.virtual_ms,
        summary.steps,
        summary.elections,
        summary.faults,
        summary.ops,
        summary.messages,
        [r.seed for r in summary.failed],
        dict(summary.coverage_runs),
        dict(summary.coverage_events),
        summary.interrupted,
    )


def test_parallel_sweep_summary_equals_the_single_worker_summary() -> None:
    seeds = list(range(40, 47))
    one: list[tuple[int, str]] = []
    two: list[tuple[int, str]] = []
    alone = run_seeds(
        seeds, SHORT, workers=1, digest=True, on_result=lambda r, _s: one.append((r.seed, r.digest))
    )
    pooled = run_seeds(
        seeds, SHORT, workers=2, digest=True, on_result=lambda r, _s: two.append((r.seed, r.digest))
    )
    assert _fields(pooled) == _fields(alone)
    # Same runs, bit for bit, seen in seed order.
    assert two == one and [seed for seed, _ in two] == seeds


def test_a_worker_ignores_ctrl_c_freezes_its_imports_and_collects_less_often() -> None:
    thresholds, handler = gc.get_threshold(), signal.getsignal(signal.SIGINT)
    try:
        _init_worker()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == SWEEP_GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        signal.signal(signal.SIGINT, handler)


def test_chunks_are_consecutive_and_cover_every_seed_once() -> None:
    seeds = list(range(7, 1_007))
    parts = chunks(seeds, 2)
    assert [s for part in parts for s in part] == seeds
    assert all(0 < len(part) <= 25 for part in parts)
    assert chunks([3], 4) == [[3]]


def test_workers_zero_means_one_per_cpu_and_negative_is_refused() -> None:
    assert resolve_workers(0) >= 1
    assert resolve_workers(3) == 3
    with pytest.raises(ValueError, match="-1"):
        resolve_workers(-1)


def test_a_failing_result_crosses_the_process_boundary_with_its_report() -> None:
    result = RunResult(seed=5, options=SHORT, failure="planted", trace=["t1", "t2"])
    back = pickle.loads(pickle.dumps(result))
    assert back.report() == result.report()
    assert "replay: resonetics sim --seed 5" in back.report()


def test_ctrl_c_returns_the_summary_so_far_and_stops_the_workers() -> None:
    def interrupt(_result: RunResult, summary: SweepSummary) -> None:
        if summary.runs == 2:
            raise KeyboardInterrupt

    summary = run_seeds(range(10), SHORT, workers=2, on_result=interrupt)
    assert summary.interrupted and summary.runs == 2 and summary.steps > 0


# --- coverage --------------------------------------------------------------------------------
def test_coverage_counts_fault_kinds_role_changes_and_snapshot_paths() -> None:
    summary = run_seeds(range(0, 6), SimOptions(), workers=1)
    runs = summary.coverage_runs
    for kind in ("drop", "delay", "dup", "partition", "crash", "clock", "longdown"):
        assert runs[f"fault: {kind}"] > 0, kind
    assert runs["fault: restart"] > 0
    assert runs["role: elected leader"] == 6  # every run elects a leader
    assert runs["role: candidate->leader"] == 6
    assert runs["role: follower->pre-candidate"] == 6
    assert runs["snapshot: taken"] == 6
    # Every known role change is listed, even when no run saw it.
    assert all(f"role: {change}" in runs for change in ROLE_CHANGES)
    events = summary.coverage_events
    assert events["role: elected leader"] == summary.elections
    table = "\n".join(summary.coverage_lines())
    assert re.search(r"fault: crash\s+\d+ runs", table)


def test_coverage_of_a_fault_kind_switched_off_is_zero() -> None:
    result = run_seed(3, SimOptions(faults=parse_faults("drop,dup"), fault_ms=1_500))
    cov = result.coverage
    assert cov["fault: drop"] > 0 and cov["fault: dup"] > 0
    for kind in ("crash", "partition", "clock", "longdown", "delay"):
        assert cov[f"fault: {kind}"] == 0, kind
    assert set(FAULT_KINDS) <= {k.split(": ", 1)[1] for k in cov if k.startswith("fault: ")}


def test_coverage_sees_snapshot_install_and_restore_paths() -> None:
    summary = run_seeds(range(0, 30), SimOptions(), workers=2)
    runs = summary.coverage_runs
    assert runs["snapshot: sent (InstallSnapshot chunk)"] > 0
    assert runs["snapshot: installed"] > 0
    assert runs["snapshot: restored at restart"] > 0


def test_coverage_sees_membership_changes_transfers_and_the_adversary() -> None:
    options = SimOptions(membership_churn=True, adversary=True)
    summary = run_seeds(range(0, 6), options, workers=1)
    runs = summary.coverage_runs
    assert runs["membership: transfer requested"] > 0
    assert runs["membership: change committed"] > 0
    assert runs["role: transfer (TimeoutNow sent)"] > 0
    assert runs["fault: adversary forged"] == 6
    assert any(key.startswith("gate drop: ") for key in runs)


# --- the command line --------------------------------------------------------------------------
def _summary_line(output: str) -> str:
    line = next(line for line in output.splitlines() if "run(s) [" in line)
    return re.sub(r"\(\d+\.\d s\)$", "", line)


def test_cli_workers_give_the_same_summary_and_print_coverage() -> None:
    args = ["sim", "--seeds", "3", "--first", "20", "--time", "0.5"]
    one = CliRunner().invoke(main, [*args, "--workers", "1"])
    two = CliRunner().invoke(main, [*args, "--workers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert _summary_line(two.output) == _summary_line(one.output)
    assert "coverage over 3 run(s)" in two.output and "snapshot: taken" in two.output
    quiet = CliRunner().invoke(main, [*args, "--no-coverage"])
    assert "coverage over" not in quiet.output


def test_cli_progress_lines_go_to_stderr_every_n_seeds() -> None:
    out = CliRunner().invoke(
        main, ["sim", "--seeds", "4", "--time", "0.5", "--progress-every", "2"]
    )
    assert out.exit_code == 0, out.output
    assert "2/4 seeds, 0 failed" in out.stderr and "4/4 seeds" in out.stderr
    assert "seeds, 0 failed" not in out.stdout


def test_cli_failing_seed_in_a_sweep_prints_its_replay_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def always(self: invariants.SafetyMonitor, node: str, term: int, hash_at: object) -> None:
        raise invariants.SimViolation("planted violation")

    monkeypatch.setattr(invariants.SafetyMonitor, "on_leader", always)
    out = CliRunner().invoke(main, ["sim", "--seeds", "2", "--first", "4", "--time", "0.5"])
    assert out.exit_code == 1
    assert "seed 4 FAILED" in out.output and "planted violation" in out.output
    assert "replay: resonetics sim --seed 5 --nodes 3" in out.output
    assert "failing seeds: 4, 5" in out.output


def test_cli_ctrl_c_prints_the_summary_so_far_and_exits_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = runner.run_seed

    def interrupted_at_third(
        seed: int, options: SimOptions | None = None, *, digest: bool = True
    ) -> RunResult:
        if seed == 2:
            raise KeyboardInterrupt
        return real(seed, options, digest=digest)

    monkeypatch.setattr("resonetics.sim.sweep.run_seed", interrupted_at_third)
    out = CliRunner().invoke(main, ["sim", "--seeds", "5", "--time", "0.5"])
    assert out.exit_code == 130, out.output
    assert "2 run(s) [" in out.output and "interrupted after 2 of 5 run(s)" in out.output


def test_cli_prints_a_throughput_line_that_matches_the_result_line() -> None:
    out = CliRunner().invoke(main, ["sim", "--seeds", "2", "--time", "0.5", "--no-coverage"])
    assert out.exit_code == 0, out.output
    result = next(line for line in out.output.splitlines() if "run(s) [" in line)
    rates = next(line for line in out.output.splitlines() if line.startswith("throughput: "))
    took = re.search(r"\((\d+\.\d) s\)$", result)
    rate = re.search(r"throughput: ([\d.]+) seeds/s", rates)
    assert took is not None and rate is not None, out.output
    elapsed, seeds_per_s = float(took.group(1)), float(rate.group(1))
    # The result line rounds the time to 0.1 s: the rate agrees within that rounding.
    assert 2 / (elapsed + 0.05) <= seeds_per_s * 1.001
    assert seeds_per_s <= 2 / max(elapsed - 0.05, 1e-3) * 1.001
    assert "steps/s" in rates and "ops checked/s" in rates
