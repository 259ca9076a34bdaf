"""``resonetics sim``: run the deterministic simulator over one seed or many.

``--seed N`` replays one run exactly (and prints its trace when it fails);
``--seeds K`` runs seeds ``--first .. --first+K-1`` with a progress bar and a
summary. Exit status: 0 when every run passed, 1 when any failed (their seeds
are listed, each replayable with ``--seed``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import click

from resonetics import planted
from resonetics.sim.options import FAULT_KINDS, SCENARIOS, SimOptions, parse_faults
from resonetics.sim.runner import RunResult, run_seed

__all__ = ["sim"]


@dataclass(slots=True)
class _Summary:
    runs: int = 0
    virtual_ms: int = 0
    steps: int = 0
    elections: int = 0
    faults: int = 0
    ops: int = 0
    failed: list[RunResult] = field(default_factory=list)

    def add(self, result: RunResult) -> None:
        self.runs += 1
        self.virtual_ms += result.virtual_ms
        self.steps += result.steps
        self.elections += result.elections
        self.faults += result.faults
        self.ops += result.ops
        if not result.ok:
            self.failed.append(result)


def _faults(_ctx: click.Context, _param: click.Parameter, value: str) -> frozenset[str]:
    try:
        return parse_faults(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sim")
@click.option("--seed", type=int, default=None, help="Run (replay) exactly this seed.")
@click.option("--seeds", type=click.IntRange(min=1), default=None, help="Run this many seeds.")
@click.option("--first", type=int, default=0, show_default=True, help="First seed of --seeds.")
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option(
    "--faults",
    "faults",
    default="all",
    show_default=True,
    callback=_faults,
    help=f"Comma-separated fault kinds ({','.join(FAULT_KINDS)}), or all, or none.",
)
@click.option(
    "--time",
    "time_s",
    type=click.FloatRange(min=0.1),
    default=4.0,
    show_default=True,
    help="Virtual seconds of faults (a quiet phase follows).",
)
@click.option("--clients", type=click.IntRange(0, 64), default=3, show_default=True)
@click.option(
    "--snapshot-entries",
    type=click.IntRange(min=0),
    default=SimOptions().snapshot_entries,
    show_default=True,
    help="Applied entries between snapshots (0: never).",
)
@click.option("--churn", is_flag=True, help="Mix leadership transfers and membership changes in.")
@click.option(
    "--batch-writes", is_flag=True, help="Propose writes at a node's next input (batched entries)."
)
@click.option(
    "--adversary",
    is_flag=True,
    help="Forged peer messages (strangers, spoofers, a removed node) and replays.",
)
@click.option(
    "--append-entries-max",
    type=click.IntRange(min=0),
    default=0,
    help="Entries per AppendEntries at most (0: the shipped limit; 1: partial replication).",
)
@click.option(
    "--readers",
    type=click.IntRange(0, 64),
    default=0,
    help="Clients that only read, besides --clients.",
)
@click.option(
    "--transfer-lag",
    is_flag=True,
    help="With --churn: the old leader hears a transfer's new term late (one-way partition).",
)
@click.option(
    "--scenario",
    type=click.Choice(list(SCENARIOS)),
    default=None,
    help="A targeted fault scenario beside the random faults (figure8: Raft's Figure 8).",
)
@click.option(
    "--plant",
    type=click.Choice([b.value for b in planted.Bug]),
    default=None,
    help="Switch one planted bug on for the run (see planted.py); the run must fail.",
)
def sim(
    seed: int | None,
    seeds: int | None,
    first: int,
    nodes: int,
    faults: frozenset[str],
    time_s: float,
    clients: int,
    snapshot_entries: int,
    churn: bool,
    batch_writes: bool,
    adversary: bool,
    append_entries_max: int,
    readers: int,
    transfer_lag: bool,
    scenario: str | None,
    plant: str | None,
) -> None:
    """Run the deterministic cluster simulator (same seed, same run, bit for bit)."""
    options = SimOptions(
        nodes=nodes,
        faults=faults,
        fault_ms=round(time_s * 1000),
        clients=clients,
        snapshot_entries=snapshot_entries,
        membership_churn=churn,
        batch_writes=batch_writes,
        adversary=adversary,
        append_entries_max=append_entries_max,
        readers=readers,
        transfer_lag=transfer_lag,
        scenario=scenario or "",
        plant=plant or "",
    )
    if seed is not None:
        seed_list = [seed]
    else:
        seed_list = list(range(first, first + (seeds or 1)))
    started = time.monotonic()
    summary = _run_all(seed_list, options, progress=len(seed_list) > 1)
    _print_summary(summary, options, time.monotonic() - started, verbose=len(seed_list) == 1)
    raise SystemExit(1 if summary.failed else 0)


def _run_all(seed_list: list[int], options: SimOptions, *, progress: bool) -> _Summary:
    summary = _Summary()
    if not progress:
        for seed in seed_list:
            summary.add(run_seed(seed, options))
        return summary
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("simulating", total=len(seed_list))
        for seed in seed_list:
            summary.add(run_seed(seed, options))
            failures = f" [red]{len(summary.failed)} failed" if summary.failed else ""
            bar.update(task, advance=1, description=f"seed {seed}{failures}")
    return summary


def _print_summary(summary: _Summary, options: SimOptions, elapsed_s: float, verbose: bool) -> None:
    for result in summary.failed:
        click.echo(result.report() if verbose else result.report().splitlines()[0], err=True)
    click.echo(
        f"{summary.runs} run(s) [{options.describe()}]: "
        f"{summary.virtual_ms / 1000:.1f} virtual s, {summary.steps} steps, "
        f"{summary.elections} elections, {summary.faults} faults injected, "
        f"{summary.ops} ops checked, {len(summary.failed)} failed "
        f"({elapsed_s:.1f} s)"
    )
    if summary.failed:
        seeds = ", ".join(str(r.seed) for r in summary.failed)
        click.echo(f"failing seeds: {seeds} (replay one with --seed N)")
