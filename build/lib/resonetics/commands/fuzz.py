"""``resonetics fuzz``: mutated client and peer lines against a live local cluster.

Exit status 0 only when no node exited, no handler error was counted, a
well-behaved client was served at the end and ``verify`` found the data dir
clean; 1 otherwise. The summary is printed and written to
``DIR/fuzz-summary.json``; node logs stay in ``DIR/cluster``.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import click

from resonetics.commands.preflight import PreflightError, check_data_dir
from resonetics.torture.fuzz import CLUSTER_DIR, SUMMARY_FILE, FuzzOptions, FuzzResult, run_fuzz

__all__ = ["format_result", "fuzz"]


@click.command("fuzz")
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option("--client-lines", type=click.IntRange(min=0), default=20_000, show_default=True)
@click.option("--peer-lines", type=click.IntRange(min=0), default=5_000, show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of every mutation (default: random).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the cluster, samples and summary (default: a temp dir).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=1),
    default=None,
    help="Stop sending after this many seconds, whatever is left.",
)
def fuzz(
    nodes: int,
    client_lines: int,
    peer_lines: int,
    seed: int | None,
    out: Path | None,
    time_limit: float | None,
) -> None:
    """Send mutated client and peer lines to a local cluster; check it survives."""  # fmt: skip
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    if out is not None:
        check_data_dir(out, what="--out")
        if (out / CLUSTER_DIR).exists():
            raise PreflightError(f"--out {out}: already holds a fuzz run; give an empty folder")
    out = out or Path(tempfile.mkdtemp(prefix=f"resonetics-fuzz-{seed}-"))
    click.echo(f"fuzz seed={seed} out={out}")
    options = FuzzOptions(
        out=out,
        seed=seed,
        nodes=nodes,
        client_lines=client_lines,
        peer_lines=peer_lines,
        time_limit_s=time_limit,
        on_progress=_progress,
    )
    result = run_fuzz(options)
    click.echo(format_result(result))
    click.echo(f"summary: {out / SUMMARY_FILE}")
    if not result.passed:
        raise SystemExit(1)


def _progress(result: FuzzResult) -> None:
    click.echo(
        f"  {result.duration_s:6.0f} s  client lines {result.client_lines}, "
        f"peer lines {result.peer_lines}, closed by node {result.closed_by_node}, "
        f"handler errors {sum(result.handler_errors.values())}, "
        f"term {result.term_end}"
    )


def format_result(result: FuzzResult) -> str:
    """The run as a two-column table, verdict last."""
    rss = ", ".join(f"{n}={kb // 1024} MB" for n, kb in sorted(result.rss_max_kb.items()))
    exits = {n: c for n, c in result.node_exits.items() if c is not None}
    rows = [
        ("seed", str(result.seed)),
        ("client lines", str(result.client_lines)),
        ("peer lines", str(result.peer_lines)),
        ("duration", f"{result.duration_s:.1f} s"),
        ("lines/s", f"{result.lines_per_s:.0f}"),
        ("connections", f"{result.client_connections} client, {result.peer_connections} peer"),
        ("node exits", str(len(exits)) + (f" {exits}" if exits else "")),
        ("handler errors", str(sum(result.handler_errors.values()))),
        (
            "closed by node",
            f"{result.closed_by_node} ({result.closed_after_oversize} oversize, "
            f"{result.closed_after_auth_failures} after failed Auth lines)",
        ),
        ("unexpected answers", str(result.unexpected_answers)),
        ("unanswered lines", str(result.unanswered_lines)),
        ("unanswered, oversize", f"{result.lines_after_oversize} (connection closed)"),
        (
            "unanswered, failed Auth",
            f"{result.lines_after_auth_failures} (connection closed)",
        ),
        ("peer lines by mode", ", ".join(f"{m}={n}" for m, n in sorted(result.peer_modes.items()))),
        ("max RSS", rss),
        ("elections", f"{result.elections} (term {result.term_start} -> {result.term_end})"),
        ("answers", ", ".join(f"{c}={n}" for c, n in result.answers.most_common())),
        ("final client", result.final_client),
        ("verify", "clean" if result.verify_ok else "; ".join(result.verify_problems[:5])),
        ("verdict", "PASS" if result.passed else "FAIL"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
