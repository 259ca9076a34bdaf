"""``resonetics status``: one line per node, as an operator wants to see it."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from resonetics import errors
from resonetics.client import Client, describe_failure
from resonetics.commands.common import cluster_option, dumps, tls_options, token_options
from resonetics.errors import ResoneticsError
from resonetics.security.tls import TLSConfig


def fetch_status(
    addresses: list[str], timeout: float, tls: TLSConfig | None = None, token: str | None = None
) -> dict[str, dict[str, Any] | str]:
    """address -> that node's status, or why it could not be had ("connection refused")."""
    out: dict[str, dict[str, Any] | str] = {}
    with Client(addresses, timeout=timeout, tls=tls, token=token) as client:
        for address in addresses:
            try:
                out[address] = client.status(address)
            except (ResoneticsError, OSError, TimeoutError) as exc:
                out[address] = describe_failure(exc)
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
    addresses = cluster.split(",")  # checked by --cluster's callback
    statuses = fetch_status(addresses, timeout, tls, token)
    if as_json:
        click.echo(dumps(statuses))
    if all(isinstance(s, str) for s in statuses.values()):
        # No table of question marks: one line naming every node and what it said.
        tried = {address: str(s) for address, s in statuses.items()}
        raise errors.Unavailable(f"status: no node answered: {errors.describe_tried(tried)}")
    if not as_json:
        Console().print(status_table(statuses))


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
            table.add_row("?", address, f"unreachable: {st}", "", "", "", "", "")
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
