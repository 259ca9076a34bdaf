"""``resonetics check HISTORY.jsonl``: is a client history linearizable?

Exit status: 0 linearizable, 1 not linearizable, 2 unknown (search budget
spent) or unreadable input. A malformed history gets a one-line message naming
the line, never a traceback.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from resonetics.check.history import Operation, load_history
from resonetics.check.linearizability import CheckResult, KeyResult, Verdict, check_history
from resonetics.errors import HistoryError
from resonetics.limits import LINEARIZABILITY_STEPS_MAX

__all__ = ["check"]

_EXIT = {Verdict.LINEARIZABLE: 0, Verdict.NOT_LINEARIZABLE: 1, Verdict.UNKNOWN: 2}


@click.command("check")
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option(
    "--steps-max",
    type=click.IntRange(min=1),
    default=LINEARIZABILITY_STEPS_MAX,
    show_default=True,
    help="Search steps per key before its verdict is 'unknown'.",
)
@click.option(
    "--time-limit",
    "time_limit_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds for the whole check; keys not reached in time are 'unknown'.",
)
def check(history: str, as_json: bool, steps_max: int, time_limit_s: float | None) -> None:
    """Check that the key-value HISTORY (Jepsen-style JSON lines) is linearizable."""
    started = time.monotonic()
    try:
        ops = load_history(history)
    except HistoryError as exc:
        if as_json:
            click.echo(json.dumps({"verdict": "invalid", "error": str(exc)}))
        else:
            click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    result = check_history(ops, steps_max=steps_max, deadline_s=time_limit_s)
    elapsed_s = time.monotonic() - started
    if as_json:
        click.echo(json.dumps(_as_json(result, elapsed_s), sort_keys=True))
    else:
        _print_text(result, elapsed_s)
    raise SystemExit(_EXIT[result.verdict])


def _print_text(result: CheckResult, elapsed_s: float) -> None:
    for key in result.keys:
        click.echo(f"key {key.key!r}: {key.verdict.value} ({key.ops} ops, {key.steps} steps)")
    click.echo(
        f"{result.verdict.value.upper()}: {result.ops} ops on {len(result.keys)} keys "
        f"checked in {elapsed_s:.3f} s"
    )
    for key in result.violations:
        click.echo("")
        click.echo(
            f"key {key.key!r}: these {len(key.counterexample)} operation(s) cannot be ordered "
            "(lines [invoke..completion]):"
        )
        for op in key.counterexample:
            click.echo(f"  {op.describe()}")
    unknown = [k for k in result.keys if k.verdict is Verdict.UNKNOWN]
    if unknown:
        click.echo(f"\n{len(unknown)} key(s) ran out of budget; raise --steps-max or --time-limit.")


def _as_json(result: CheckResult, elapsed_s: float) -> dict[str, Any]:
    return {
        "verdict": result.verdict.value,
        "ops": result.ops,
        "elapsed_s": round(elapsed_s, 6),
        "keys": [_key_json(k) for k in result.keys],
    }


def _key_json(key: KeyResult) -> dict[str, Any]:
    return {
        "key": key.key,
        "verdict": key.verdict.value,
        "ops": key.ops,
        "steps": key.steps,
        "counterexample": [_op_json(op) for op in key.counterexample],
    }


def _op_json(op: Operation) -> dict[str, Any]:
    return {
        "process": op.process,
        "f": op.f,
        "call_line": op.call,
        "return_line": None if op.pending else int(op.ret),
        "input": op.input,
        "output": op.output,
        "success": op.success,
        "deleted": op.deleted,
        "text": op.describe().strip(),
    }
