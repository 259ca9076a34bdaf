"""``resonetics call OP --arg k=v ...``: send any op a cluster serves (a served machine's).

Each ``--arg NAME=VALUE`` becomes one argument: VALUE is parsed as JSON when it
is JSON (``by=2`` sends the integer 2, ``tags=["a"]`` a list) and sent as a
string otherwise (``name=alice``); ``--arg name:=TEXT`` always sends TEXT as a
string. The node's answer is printed as JSON; a refusal (an unknown op, a bad
argument) is one line on stderr with exit code 2 (commands/failures.py).
"""

from __future__ import annotations

import json
from typing import Any

import click

from resonetics.client import Client
from resonetics.commands.common import (
    client_errors,
    cluster_option,
    dumps,
    timeout_option,
    tls_options,
    token_options,
)
from resonetics.security.tls import TLSConfig


def parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("by=2", "who:=7")`` -> ``{"by": 2, "who": "7"}``; a usage error for a bad pair."""
    args: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.rstrip(":"):
            raise click.UsageError(f"--arg {pair!r}: expected NAME=VALUE")
        if name.endswith(":"):
            value: Any = text
            name = name[:-1]
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        if name in args:
            raise click.UsageError(f"--arg {name!r} given twice")
        args[name] = value
    return args


@click.command(name="call")
@click.argument("op")
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="One argument; VALUE is JSON if it parses, else a string (NAME:=VALUE: a string).",
)
@click.option(
    "--consistency",
    type=click.Choice(["linearizable", "lease", "stale"]),
    help="For a query: how fresh the answer must be (default linearizable).",
)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def call(
    op: str,
    pairs: tuple[str, ...],
    consistency: str | None,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Send OP with its arguments and print the answer as JSON.

    OP is any op the cluster serves, e.g. a served machine's (docs/machines.md).
    """
    args = parse_args(pairs)
    if consistency is not None:
        args["consistency"] = consistency
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        result = client.call(op, args)
    click.echo(dumps(result))


__all__ = ["call", "parse_args"]
