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

from resonetics.commands.cluster import BASE_PORT, check_local_ports
from resonetics.commands.preflight import check_data_dir
from resonetics.localcluster import LocalCluster
from resonetics.torture import FAULT_KINDS, TortureOptions, TortureResult, run_torture
from resonetics.torture.harness import TortureError, check_time_limit
from resonetics.torture.progress import faults_text

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
@click.option(
    "--base-port",
    type=BASE_PORT,
    default=None,
    help="Node clients on BASE..BASE+N-1, peers on BASE+100.. (default: free ports; the "
    "fault-injecting proxies always take free ports).",
)
@click.option(
    "--check-limit",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds the linearizability check may take (default: --time, within 30..300); "
    "past it the verdict is unknown.",
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
    base_port: int | None,
    check_limit: float | None,
) -> None:
    """Run a real cluster under faults and check what its clients saw.

    A progress line every few seconds; Ctrl-C ends the faults early, winds down and
    prints the summary (exit 130); a second Ctrl-C aborts."""  # fmt: skip
    kinds = tuple(k.strip() for k in faults.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise click.BadParameter(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    if out is not None:
        check_data_dir(out, what="--out")
    check_local_ports(LocalCluster(Path("unused"), size=nodes, base_port=base_port), base_port)
    out = out or Path(tempfile.mkdtemp(prefix=f"resonetics-torture-{seed}-"))
    limit = check_limit if check_limit is not None else check_time_limit(time_s)
    options = TortureOptions(
        seed=seed, out=out, nodes=nodes, time_s=time_s, clients=clients, keys=keys,
        faults=kinds, overlap_p=overlap, snapshot_entries=snapshot_entries,
        check_time_limit_s=limit, base_port=base_port, handle_sigint=True,
        progress=click.echo,
    )  # fmt: skip
    click.echo(
        f"seed {seed}: {nodes} nodes, {time_s:g} s, faults {','.join(kinds)}; out {out}\n"
        f"then at most {options.wind_down_s:g} s to recover and converge, "
        f"{limit:g} s to check; Ctrl-C ends early with a summary"
    )
    try:
        result = run_torture(options)
    except TortureError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo(f"aborted (second Ctrl-C): no summary; partial history and logs in {out}")
        raise SystemExit(INTERRUPTED_EXIT) from None
    click.echo(describe(result))
    if result.summary.get("interrupted"):
        raise SystemExit(INTERRUPTED_EXIT)
    raise SystemExit(0 if result.ok else 1)


#: Exit status of a run ended by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


def describe(result: TortureResult) -> str:
    """The human summary of a run."""
    s = result.summary
    ops = s["ops"]
    checker = s["checker"]
    faults = faults_text(s["faults"])
    total = ops["ok"] + ops["fail"] + ops["info"]
    lines = [
        "summary" + (" (interrupted by Ctrl-C)" if s.get("interrupted") else "") + ":",
        f"seed {s['seed']}: ops ok {ops['ok']}, failed {ops['fail']}, "
        f"indeterminate {ops['info']} (of {total}"
        + (f" in {s['elapsed_s']:g} s)" if "elapsed_s" in s else ")"),
        f"faults: {faults}",
        f"leader changes seen: {s['leader_changes']} ({len(s['leaders'])} leaders)",
        f"checker: {checker.get('verdict')} ({checker.get('ops')} ops, "
        f"{checker.get('elapsed_s')} s)",
        f"converged: {s['converged']}",
        f"verdict: {'PASS' if result.ok else 'FAIL'}",
    ]
    lines += [f"  failure: {f}" for f in result.failures]
    return "\n".join(lines)
