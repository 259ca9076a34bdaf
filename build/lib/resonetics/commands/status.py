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
        console = Console()
        console.print(status_table(statuses, console.width))


#: Below this many columns the table leaves out ``address`` (the operator typed it;
#: unreachable rows keep it in their reason), below ``STATUS_NARROW_COLUMNS`` also
#: ``last contact``; below ``STATUS_WIDE_COLUMNS`` the long cells wrap.
STATUS_NO_ADDRESS_COLUMNS = 100
STATUS_NARROW_COLUMNS = 72
STATUS_WIDE_COLUMNS = 120


def status_table(statuses: dict[str, dict[str, Any] | str], width: int | None = None) -> Table:
    """The status table for a terminal ``width`` columns wide (None: as wide as needed).

    The columns an operator reads first (node, role, term, indexes, leader) are never
    cut; on a narrow terminal the others wrap or are left out (``status --json``
    still has everything) rather than every cell ending in "…".
    """
    show_address = width is None or width >= STATUS_NO_ADDRESS_COLUMNS
    show_contact = width is None or width >= STATUS_NARROW_COLUMNS
    wrap = width is not None and width < STATUS_WIDE_COLUMNS
    table = Table(title="Resonetics cluster", expand=False)
    table.add_column("node", no_wrap=True)
    if show_address:
        table.add_column("address", overflow="fold", no_wrap=not wrap, min_width=9)
    # Wide enough for "pre-candidate" whole; an unreachable node's reason wraps below it.
    table.add_column("role", overflow="fold", no_wrap=not wrap, min_width=len("pre-candidate"))
    for column in ("term", "commit", "applied", "leader"):
        table.add_column(column, no_wrap=True)
    if show_contact:
        table.add_column("last contact", overflow="fold", no_wrap=not wrap, min_width=10)
    for address, st in statuses.items():
        if isinstance(st, str):
            cells = ["?", address, f"unreachable: {st}", "", "", "", "", ""]
        else:
            contact = ", ".join(f"{p} {s:.2f}s" for p, s in st.get("last_contact_s", {}).items())
            cells = [
                str(st["node"]),
                address,
                str(st["role"]),
                str(st["term"]),
                str(st["commit_index"]),
                str(st["applied_index"]),
                str(st.get("leader") or "-"),
                contact or "-",
            ]
        if isinstance(st, str) and not show_address:
            cells[2] = f"{address} unreachable: {st}"
        keep = [True, show_address, True, True, True, True, True, show_contact]
        table.add_row(*(cell for cell, shown in zip(cells, keep, strict=True) if shown))
    return table
