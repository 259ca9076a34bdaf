"""``resonetics torture``: real processes, a nemesis, a checked history.

Exit status 0 only when every check passes; 1 otherwise. The seed and a
summary are printed; the history, the fault log, the node logs and
``summary.json`` are left in ``--out`` for study and replay.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import click

from resonetics.commands.preflight import check_data_dir
from resonetics.torture import FAULT_KINDS, TortureOptions, TortureResult, run_torture
from resonetics.torture.harness import TortureError

__all__ = ["torture"]


@click.command("torture")
@click.option("--nodes", type=click.IntRange(2, 9), default=3, show_default=True)
@click.option(
    "--time",
    "time_s",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds of faults and load.",
)
@click.option("--seed", type=int, default=None, help="Seed of the fault schedule and workload.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for history, fault log, node logs and summary (default: a temp dir).",
)
@click.option("--clients", type=click.IntRange(1, 200), default=10, show_default=True)
@click.option("--keys", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option(
    "--faults",
    default=",".join(FAULT_KINDS),
    show_default=True,
    help="Comma-separated fault kinds to inject.",
)
@click.option(
    "--overlap",
    type=click.FloatRange(0, 1),
    default=0.3,
    show_default=True,
    help="Chance that a process fault and a network fault run together.",
)
@click.option(
    "--snapshot-entries",
    type=click.IntRange(min=1),
    default=None,
    help="Passed to every node (small values exercise snapshots).",
)
def torture(
    nodes: int,
    time_s: float,
    seed: int | None,
    out: Path | None,
    clients: int,
    keys: int,
    faults: str,
    overlap: float,
    snapshot_entries: int | None,
) -> None:
    """Run a real cluster under faults and check what its clients saw."""  # fmt: skip
    kinds = tuple(k.strip() for k in faults.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise click.BadParameter(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    if out is not None:
        check_data_dir(out, what="--out")
    out = out or Path(tempfile.mkdtemp(prefix=f"resonetics-torture-{seed}-"))
    click.echo(f"seed {seed}: {nodes} nodes, {time_s:g} s, faults {','.join(kinds)}; out {out}")
    options = TortureOptions(
        seed=seed, out=out, nodes=nodes, time_s=time_s, clients=clients, keys=keys,
        faults=kinds, overlap_p=overlap, snapshot_entries=snapshot_entries,
    )  # fmt: skip
    try:
        result = run_torture(options)
    except TortureError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(describe(result))
    raise SystemExit(0 if result.ok else 1)


def describe(result: TortureResult) -> str:
    """The human summary of a run."""
    s = result.summary
    ops = s["ops"]
    checker = s["checker"]
    faults = ", ".join(f"{k} x{v}" for k, v in s["faults"].items()) or "none"
    lines = [
        f"seed {s['seed']}: ops ok {ops['ok']}, failed {ops['fail']}, indeterminate {ops['info']}",
        f"faults: {faults}",
        f"leader changes seen: {s['leader_changes']} ({len(s['leaders'])} leaders)",
        f"checker: {checker.get('verdict')} ({checker.get('ops')} ops, "
        f"{checker.get('elapsed_s')} s)",
        f"converged: {s['converged']}",
        f"verdict: {'PASS' if result.ok else 'FAIL'}",
    ]
    lines += [f"  failure: {f}" for f in result.failures]
    return "\n".join(lines)
