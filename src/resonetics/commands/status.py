"""``resonetics status``: one line per node, as an operator wants to see it."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from resonetics.client import Client
from resonetics.commands.common import (
    EXIT_UNAVAILABLE,
    cluster_option,
    dumps,
    tls_options,
    token_options,
)
from resonetics.errors import ResoneticsError
from resonetics.security.tls import TLSConfig


def fetch_status(
    addresses: list[str], timeout: float, tls: TLSConfig | None = None, token: str | None = None
) -> dict[str, dict[str, Any] | str]:
    """address -> that node's status, or the reason it could not be had."""
    out: dict[str, dict[str, Any] | str] = {}
    with Client(addresses, timeout=timeout, tls=tls, token=token) as client:
        for address in addresses:
            try:
                out[address] = client.status(address)
            except (ResoneticsError, OSError, TimeoutError) as exc:
                out[address] = f"unreachable ({type(exc).__name__})"
    return out


@click.command()
@cluster_option
@click.option("--timeout", type=float, default=2.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw status objects.")
@tls_options
@token_options
def status(
    cluster: str, timeout: float, as_json: bool, tls: TLSConfig | None, token: str | None
) -> None:
    """Show each node's role, term, commit and applied index, leader and last contact."""
    addresses = [a.strip() for a in cluster.split(",") if a.strip()]
    statuses = fetch_status(addresses, timeout, tls, token)
    if as_json:
        click.echo(dumps(statuses))
    else:
        Console().print(status_table(statuses))
    if all(isinstance(s, str) for s in statuses.values()):
        sys.exit(EXIT_UNAVAILABLE)


def status_table(statuses: dict[str, dict[str, Any] | str]) -> Table:
    table = Table(title="Resonetics cluster")
    for column in (
        "node",
        "address",
        "role",
        "term",
        "commit",
        "applied",
        "leader",
        "last contact",
    ):
        table.add_column(column)
    for address, st in statuses.items():
        if isinstance(st, str):
            table.add_row("?", address, st, "", "", "", "", "")
            continue
        contact = ", ".join(f"{p} {s:.2f}s" for p, s in st.get("last_contact_s", {}).items())
        table.add_row(
            str(st["node"]),
            address,
            str(st["role"]),
            str(st["term"]),
            str(st["commit_index"]),
            str(st["applied_index"]),
            str(st.get("leader") or "-"),
            contact or "-",
        )
    return table
