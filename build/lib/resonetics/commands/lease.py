"""``resonetics lease ...`` and ``resonetics lock NAME -- COMMAND`` (docs/leases.md)."""

from __future__ import annotations

import os
import subprocess
import time

import click

from resonetics import errors
from resonetics.client import Client
from resonetics.commands.common import (
    client_errors,
    cluster_option,
    dumps,
    timeout_option,
    tls_options,
    token_options,
)
from resonetics.recipes import Lock, describe
from resonetics.security.tls import TLSConfig

_TTL = click.FloatRange(min=1.0, max=24 * 3600.0)


@click.group(name="lease")
def lease() -> None:
    """Grant, keep alive, revoke and inspect leases (docs/leases.md)."""


@lease.command()
@click.argument("ttl", type=_TTL)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def grant(
    ttl: float, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Grant a lease of TTL seconds; prints its id."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        click.echo(dumps({"id": client.lease_grant(ttl), "ttl_s": ttl}))


@lease.command()
@click.argument("lease_id", type=click.IntRange(min=1))
@click.option("--once", is_flag=True, help="Send one keep-alive and exit.")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def keepalive(
    lease_id: int,
    once: bool,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Keep LEASE_ID alive (a keep-alive every third of its TTL) until interrupted."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        while True:
            answer = client.lease_keepalive(lease_id)
            click.echo(dumps(answer))
            if once:
                return
            time.sleep(max(0.1, int(answer["ttl_ms"]) / 3000))


@lease.command()
@click.argument("lease_id", type=click.IntRange(min=1))
@click.option(
    "--within",
    default="",
    help="Prefix every attached key must lie under (one you may write); default: all keys.",
)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def revoke(
    lease_id: int,
    within: str,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """End LEASE_ID now and delete its keys; prints them."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        click.echo(dumps({"id": lease_id, "deleted": client.lease_revoke(lease_id, within=within)}))


@lease.command()
@click.argument("lease_id", type=click.IntRange(min=1))
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def info(
    lease_id: int, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Show LEASE_ID's TTL, remaining time (on the leader's clock) and keys."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        click.echo(dumps(client.lease_info(lease_id)))


@lease.command(name="list")
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def list_(cluster: str, timeout: float, tls: TLSConfig | None, token: str | None) -> None:
    """List the live leases' ids."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        click.echo(dumps({"leases": client.lease_list()}))


@click.command(name="lock")
@click.argument("name")
@click.argument("command", nargs=-1, required=True)
@click.option("--ttl", type=_TTL, default=10.0, show_default=True, help="Lease TTL, seconds.")
@click.option(
    "--wait", type=click.FloatRange(min=0), default=None, help="Give up after this many seconds."
)
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def lock(
    name: str,
    command: tuple[str, ...],
    ttl: float,
    wait: float | None,
    cluster: str,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> None:
    """Run COMMAND while holding the lock NAME (a lease-backed lock with a fencing token).

    COMMAND gets RESONETICS_LOCK_TOKEN (the fencing token) and RESONETICS_LOCK_LEASE in
    its environment; the lock is released when it exits, and this exits with its code.
    If the lease is lost meanwhile, COMMAND is terminated and the exit code is 75.
    """
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        held = Lock(client, name, ttl)
        token_value = held.acquire(wait)
        click.echo(dumps(describe(held)), err=True)
        env = {
            **os.environ,
            "RESONETICS_LOCK_TOKEN": str(token_value),
            "RESONETICS_LOCK_LEASE": str(held.lease_id),
        }
        try:
            proc = subprocess.Popen(list(command), env=env)
            code = None
            while code is None:
                try:
                    code = proc.wait(timeout=min(1.0, ttl / 4))
                except subprocess.TimeoutExpired:
                    try:
                        held.check()
                    except errors.LeaseLost as exc:
                        proc.terminate()
                        proc.wait()
                        click.echo(f"resonetics lock: {exc}", err=True)
                        raise SystemExit(75) from None
        finally:
            held.release()
        raise SystemExit(code)


__all__ = ["lease", "lock"]
