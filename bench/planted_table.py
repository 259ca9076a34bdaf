"""The planted-bug table: for every catalogue entry, the seeds and time to its first catch.

Runs the same sweeps as ``tests/sim/test_planted_bugs.py`` (seeds 0, 1, ... with the bug
switched on and the entry's options) and prints one Markdown row per bug: where it lives,
which check caught it, the seed that did, and the CPU time the sweep took. A bug not caught
within its budget (times ``--factor``) is a row saying so, and the exit status is 1.

    python -m bench.planted_table [--factor K] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

from resonetics.planted import CATALOGUE, Planted
from resonetics.sim.options import SimOptions
from resonetics.sim.runner import run_seed


@dataclass(frozen=True, slots=True)
class Catch:
    """One sweep's outcome: the first failing seed (None: survived the budget)."""

    bug: str
    where: str
    budget: int
    seed: int | None
    check: str
    cpu_s: float
    wall_s: float


def first_catch(entry: Planted, factor: int) -> Catch:
    """Sweep seeds 0.. with the bug on until a run fails or the budget is spent."""
    options = SimOptions(plant=entry.bug.value, **entry.options)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    seed_caught: int | None = None
    check = ""
    for seed in range(entry.budget * factor):
        result = run_seed(seed, options)
        if not result.ok:
            seed_caught = seed
            failure = result.failure or ""
            check = next((c for c in entry.caught_by if c in failure), failure[:60])
            break
    return Catch(
        bug=entry.bug.value,
        where=entry.where,
        budget=entry.budget * factor,
        seed=seed_caught,
        check=check,
        cpu_s=time.process_time() - cpu0,
        wall_s=time.perf_counter() - wall0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=int, default=1, help="multiply every budget (soak: 10)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.factor < 1:
        parser.error(f"--factor must be at least 1, got {args.factor}")
    rows: list[Catch] = []
    print("| bug | lives in | caught by | seeds to first catch | budget | CPU s |")
    print("|---|---|---|---|---|---|")
    for entry in CATALOGUE.values():
        if entry.budget == 0:
            print(
                f"| `{entry.bug.value}` | {entry.where} | not caught: {entry.missed} | - | - | - |"
            )
            continue
        catch = first_catch(entry, args.factor)
        rows.append(catch)
        seeds = "not caught" if catch.seed is None else str(catch.seed + 1)
        print(
            f"| `{catch.bug}` | {catch.where} | {catch.check} | {seeds} | {catch.budget} "
            f"| {catch.cpu_s:.1f} |",
            flush=True,
        )
    missed = [r.bug for r in rows if r.seed is None]
    total_cpu = sum(r.cpu_s for r in rows)
    print(f"\n{len(rows) - len(missed)}/{len(rows)} caught; {total_cpu:.1f} CPU s in all")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([asdict(r) for r in rows], out, indent=1)
    if missed:
        print(f"survived their budget: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
