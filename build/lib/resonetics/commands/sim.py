"""``resonetics sim``: run the deterministic simulator over one seed or many.

``--seed N`` replays one run exactly (and prints its trace when it fails);
``--seeds K`` runs seeds ``--first .. --first+K-1`` with a progress bar and a
summary. ``--workers K`` runs them on K processes (0: one per CPU) with the
same summary as one process. After the summary comes the coverage table: how
many runs saw each fault kind, role change, snapshot path and membership
change. Exit status: 0 when every run passed, 1 when any failed (each is listed
with its replay command), 130 when interrupted (Ctrl-C prints the summary so far).
"""

from __future__ import annotations

import sys
import time

import click

from resonetics import planted
from resonetics.errors import MachineError
from resonetics.machine.ops import load_factory
from resonetics.sim.mix import MODES, MixConflict, check_base, mixed, mode_of
from resonetics.sim.options import (
    FAULT_KINDS,
    SCENARIOS,
    SimOptions,
    heartbeat_ticks_for,
    parse_faults,
)
from resonetics.sim.runner import RunResult
from resonetics.sim.sweep import SweepSummary, run_seeds

#: Without a terminal, a progress line goes to stderr every this many seeds (when
#: ``--progress-every`` is not given and the sweep has more seeds than this).
PROGRESS_EVERY_SEEDS = 1_000

__all__ = ["sim"]


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
@click.option(
    "--heartbeat-ticks",
    type=click.IntRange(0, SimOptions().election_ticks - 1),
    default=0,
    help="Ticks between a leader's heartbeats (0: drawn per seed from 1 and 2; a node's "
    "default is 2).",
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
    "--watchers",
    type=click.IntRange(0, 64),
    default=0,
    help="Watchers following change streams, checked against the committed log at the end.",
)
@click.option(
    "--lease-clients",
    type=click.IntRange(0, 64),
    default=0,
    help="Clients that grant leases, keep some alive and let some expire (docs/leases.md).",
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
    help="A targeted fault scenario beside the random faults (figure8: Raft's Figure 8; "
    "revote: a voter loses power right after it grants a vote).",
)
@click.option(
    "--plant",
    type=click.Choice([b.value for b in planted.Bug]),
    default=None,
    help="Switch one planted bug on for the run (see planted.py); the run must fail.",
)
@click.option(
    "--mix",
    is_flag=True,
    help=f"Spread the seeds over all {len(MODES)} modes (seed N runs mode N mod {len(MODES)}: "
    "the faults given, churn, adversary, five nodes, batched writes, watchers and leases, "
    "and the revote, figure8 and transfer-lag scenarios).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Processes running seeds in parallel (0: one per CPU); the summary is the same.",
)
@click.option(
    "--progress-every",
    type=click.IntRange(min=0),
    default=None,
    help=f"Print a progress line to stderr every N seeds (default: a bar on a terminal, "
    f"else every {PROGRESS_EVERY_SEEDS}; 0: never).",
)
@click.option("--no-coverage", is_flag=True, help="Leave the coverage table out.")
@click.option(
    "--machine",
    default="",
    metavar="PKG.MOD:FACTORY",
    help="Replicate this machine instead of the key-value store: its declared ops with "
    "generated args, replicas' states compared at every index, its model checked.",
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
    heartbeat_ticks: int,
    churn: bool,
    batch_writes: bool,
    adversary: bool,
    append_entries_max: int,
    readers: int,
    watchers: int,
    lease_clients: int,
    transfer_lag: bool,
    scenario: str | None,
    plant: str | None,
    mix: bool,
    workers: int,
    progress_every: int | None,
    no_coverage: bool,
    machine: str,
) -> None:
    """Run the deterministic cluster simulator (same seed, same run, bit for bit)."""
    if machine:
        if readers:
            raise click.UsageError("--readers issue key-value reads: not with --machine")
        if lease_clients:
            raise click.UsageError(
                "--lease-clients use the key-value store's leases: not with --machine"
            )
        try:
            load_factory(machine)
        except MachineError as exc:
            raise click.BadParameter(str(exc), param_hint="--machine") from None
    options = SimOptions(
        nodes=nodes,
        faults=faults,
        fault_ms=round(time_s * 1000),
        clients=clients,
        snapshot_entries=snapshot_entries,
        heartbeat_ticks=heartbeat_ticks,
        membership_churn=churn,
        batch_writes=batch_writes,
        adversary=adversary,
        append_entries_max=append_entries_max,
        readers=readers,
        watchers=watchers,
        lease_clients=lease_clients,
        transfer_lag=transfer_lag,
        scenario=scenario or "",
        plant=plant or "",
        machine=machine,
    )
    if mix:
        try:
            check_base(options)
        except MixConflict as exc:
            raise click.UsageError(str(exc)) from None
    if seed is not None:
        seed_list = [seed]
    else:
        seed_list = list(range(first, first + (seeds or 1)))
    started = time.monotonic()
    summary = _run_all(seed_list, options, workers=workers, progress_every=progress_every, mix=mix)
    if len(seed_list) == 1:  # the one run's own options, its mode and its heartbeat period
        one = mixed(options, seed_list[0]) if mix else options
        described = one.describe() + (f" mix mode {mode_of(seed_list[0])!r}" if mix else "")
        if not one.heartbeat_ticks:
            described += f" heartbeat every {heartbeat_ticks_for(seed_list[0], one)} tick(s)"
    else:
        described = options.describe() + (f" mix of {len(MODES)} modes" if mix else "")
    _print_summary(summary, described, time.monotonic() - started, verbose=len(seed_list) == 1)
    if not no_coverage and len(seed_list) > 1:
        for line in summary.coverage_lines():
            click.echo(line)
    if summary.interrupted:
        click.echo(f"interrupted after {summary.runs} of {len(seed_list)} run(s)", err=True)
        raise SystemExit(130)
    raise SystemExit(1 if summary.failed else 0)


def _run_all(
    seed_list: list[int],
    options: SimOptions,
    *,
    workers: int,
    progress_every: int | None,
    mix: bool,
) -> SweepSummary:
    total = len(seed_list)
    if total > 1 and progress_every is None and sys.stderr.isatty():
        return _run_with_bar(seed_list, options, workers, mix)
    every = PROGRESS_EVERY_SEEDS if progress_every is None else progress_every
    if total <= 1 or every == 0 or (progress_every is None and total <= every):
        return run_seeds(seed_list, options, workers=workers, mix=mix)
    started = time.monotonic()

    def line(result: RunResult, summary: SweepSummary) -> None:
        if summary.runs % every and summary.runs != total:
            return
        elapsed = time.monotonic() - started
        eta = elapsed / summary.runs * (total - summary.runs)
        click.echo(
            f"{summary.runs}/{total} seeds, {len(summary.failed)} failed, "
            f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left (last seed {result.seed})",
            err=True,
        )

    return run_seeds(seed_list, options, workers=workers, on_result=line, mix=mix)


def _run_with_bar(
    seed_list: list[int], options: SimOptions, workers: int, mix: bool
) -> SweepSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("simulating", total=len(seed_list))

        def advance(result: RunResult, summary: SweepSummary) -> None:
            failures = f" [red]{len(summary.failed)} failed" if summary.failed else ""
            bar.update(task, advance=1, description=f"seed {result.seed}{failures}")

        return run_seeds(seed_list, options, workers=workers, on_result=advance, mix=mix)


def _print_summary(summary: SweepSummary, described: str, elapsed_s: float, verbose: bool) -> None:
    for result in summary.failed:
        # The failure line and its replay command; the trace only for a single seed.
        click.echo(
            result.report() if verbose else "\n".join(result.report().splitlines()[:2]), err=True
        )
    click.echo(
        f"{summary.runs} run(s) [{described}]: "
        f"{summary.virtual_ms / 1000:.1f} virtual s, {summary.steps} steps, "
        f"{summary.elections} elections, {summary.faults} faults injected, "
        f"{summary.ops} ops checked, {len(summary.failed)} failed "
        f"({elapsed_s:.1f} s)"
    )
    if summary.runs > 1 and elapsed_s > 0:
        # Wall-clock rates of this sweep (all workers together), for sizing long sweeps.
        click.echo(
            f"throughput: {summary.runs / elapsed_s:.2f} seeds/s, "
            f"{summary.steps / elapsed_s:,.0f} steps/s, "
            f"{summary.ops / elapsed_s:,.0f} ops checked/s"
        )
    if summary.failed:
        seeds = ", ".join(str(r.seed) for r in summary.failed)
        click.echo(f"failing seeds: {seeds} (replay one with --seed N)")
