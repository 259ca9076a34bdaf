"""``resonetics member ...`` and ``resonetics leader transfer``: change a live cluster.

Every change goes to the leader (the client follows NOT_LEADER hints) and is
answered once its CONFIG entry has committed. ``member add`` adds the node as a
learner; the leader promotes it to voter by itself once it has acknowledged the
entries committed before it was added (a dead address never is), and
``--wait`` (the default) polls ``member_list`` until that has happened.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import click

from resonetics.addresses import parse_address
from resonetics.client import Client
from resonetics.commands.common import (
    EXIT_UNAVAILABLE,
    client_errors,
    cluster_option,
    dumps,
    timeout_option,
    tls_options,
    token_options,
)
from resonetics.errors import ResoneticsError
from resonetics.security.tls import TLSConfig

#: Seconds between two ``member_list`` polls while waiting for a promotion or a transfer.
POLL_INTERVAL_S = 0.2
#: Seconds to wait for a transfer to take effect before asking the leader again.
TRANSFER_RETRY_S = 2.0


def _client(cluster: str, timeout: float, tls: TLSConfig | None, token: str | None) -> Client:
    return Client(cluster, timeout=timeout, tls=tls, token=token)


def _describe(view: dict[str, Any]) -> str:
    addresses = view.get("addresses", {})
    leader = view.get("leader")
    if leader is None:  # no node reached knows one: say whose view this is
        leader = f"none known (the view of {view.get('node', '?')})"
    lines = [f"leader: {leader}  term: {view.get('term')}"]
    for node in view.get("voters", []):
        lines.append(f"  {node:<10} voter    {addresses.get(node, '?')}")
    for node in view.get("learners", []):
        lines.append(f"  {node:<10} learner  {addresses.get(node, '?')}")
    if view.get("voters_outgoing"):
        lines.append(f"  (joint change in progress; outgoing voters {view['voters_outgoing']})")
    return "\n".join(lines)


@click.group()
def member() -> None:
    """List and change the cluster's members (joint consensus, one change at a time)."""


@member.command("list")
@cluster_option
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw configuration.")
@tls_options
@token_options
@client_errors
def list_(
    cluster: str, timeout: float, as_json: bool, tls: TLSConfig | None, token: str | None
) -> None:
    """Show voters, learners and their addresses."""
    with _client(cluster, timeout, tls, token) as client:
        view = client.member_list()
    click.echo(dumps(view) if as_json else _describe(view))


_CLIENT_ADDRESS = click.option(
    "--client-address", help="HOST:PORT where the node serves clients (for leader hints)."
)


@member.command("add")
@click.argument("node")
@click.argument("address")
@_CLIENT_ADDRESS
@click.option("--wait/--no-wait", default=True, help="Wait until the node is a voter.")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def add(
    node: str,
    address: str,
    client_address: str | None,
    wait: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Add NODE at its peer ADDRESS (HOST:PORT): a learner first, a voter once caught up."""
    parse_address(address, what="ADDRESS")
    if client_address is not None:
        parse_address(client_address, what="--client-address")
    with _client(cluster, timeout, tls, token) as client:
        client.member_add(node, address, client_address=client_address)
        added_at = time.monotonic()
        click.echo(
            f"{node} added as a learner; it becomes a voter once it has acknowledged "
            "the entries committed before it was added"
        )
        if wait and not _wait_until(client, timeout, lambda v: node in v.get("voters", [])):
            click.echo(_why_learner(client, node, address, time.monotonic() - added_at), err=True)
            sys.exit(EXIT_UNAVAILABLE)
        if wait:
            click.echo(f"{node} is a voter")


def _why_learner(client: Client, node: str, address: str, waited_s: float) -> str:
    """Why ``node`` is still a learner, from the leader's view (its match vs the bar)."""
    try:
        view = client.member_list()
    except (OSError, ResoneticsError) as exc:
        return f"{node} is not a voter yet after {waited_s:.0f} s (member list failed: {exc})"
    acked = int(view.get("match_index", {}).get(node, 0))
    need = view.get("catch_up_index", {}).get(node, "?")
    if acked == 0:
        head = f"{node} at {address} has not answered since it was added {waited_s:.0f} s ago"
    else:
        head = f"{node} at {address} has not caught up {waited_s:.0f} s after it was added"
    return (
        f"{head}; it stays a learner (acknowledged index {acked}, needs {need}: the "
        "commit index when it was added). Check the address and that the node runs; "
        f"`member remove {node}` undoes the add."
    )


@member.command("add-learner")
@click.argument("node")
@click.argument("address")
@_CLIENT_ADDRESS
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def add_learner(
    node: str,
    address: str,
    client_address: str | None,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Add NODE at its peer ADDRESS as a learner that stays a learner (promote it later)."""
    parse_address(address, what="ADDRESS")
    if client_address is not None:
        parse_address(client_address, what="--client-address")
    with _client(cluster, timeout, tls, token) as client:
        client.member_add(node, address, learner=True, client_address=client_address)
    click.echo(f"{node} added as a learner")


@member.command("promote")
@click.argument("node")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def promote(
    node: str, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Make learner NODE a voter."""
    with _client(cluster, timeout, tls, token) as client:
        client.member_promote(node)
    click.echo(f"{node} promoted to voter")


@member.command("remove")
@click.argument("node")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def remove(
    node: str, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Remove NODE (a leader that removes itself steps down once the change commits)."""
    with _client(cluster, timeout, tls, token) as client:
        client.member_remove(node)
    click.echo(f"{node} removed")


@click.group()
def leader() -> None:
    """Leadership operations."""


@leader.command("transfer")
@click.option("--to", "target", required=True, help="Node id of the voter to hand over to.")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def transfer(
    target: str, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Move leadership to a voter (aborted by the leader after an election timeout)."""
    with _client(cluster, timeout, tls, token) as client:
        deadline = time.monotonic() + timeout
        while True:
            # A transfer whose TimeoutNow was lost aborts after an election timeout:
            # ask again until the target leads (asking a leader that is the target is a no-op).
            client.transfer_leader(target)
            if _wait_until(client, TRANSFER_RETRY_S, lambda v: v.get("leader") == target):
                break
            if time.monotonic() >= deadline:
                click.echo(f"{target} did not take over within {timeout}s", err=True)
                sys.exit(EXIT_UNAVAILABLE)
    click.echo(f"{target} is the leader")


def _wait_until(client: Client, timeout: float, done: Callable[[dict[str, Any]], bool]) -> bool:
    """Poll ``member_list`` until ``done`` holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done(client.member_list()):
                return True
        except (OSError, ResoneticsError):
            pass  # a node restarting or an election in progress: poll again
        time.sleep(POLL_INTERVAL_S)
    return False


__all__ = ["leader", "member"]
