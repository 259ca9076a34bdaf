"""``resonetics tls``: the operator's side of certificate revocation (docs/security.md)."""

from __future__ import annotations

from pathlib import Path

import click

from resonetics.commands.failures import CliGroup
from resonetics.security.crl import CRL_DAYS_DEFAULT, revoke


@click.group(cls=CliGroup)
def tls() -> None:
    """Revoke node and client certificates (the list every node's --tls-crl names)."""


@tls.command("revoke")
@click.argument("certificates", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--ca",
    "ca_cert",
    required=True,
    type=click.Path(path_type=Path),
    help="The CA certificate (PEM).",
)
@click.option(
    "--ca-key", required=True, type=click.Path(path_type=Path), help="The CA's private key (PEM)."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The revocation list to extend (made when missing).",
)
@click.option(
    "--days",
    type=int,
    default=CRL_DAYS_DEFAULT,
    show_default=True,
    help="Days the list is valid (an expired list makes nodes refuse every certificate).",
)
def revoke_command(
    certificates: tuple[Path, ...], ca_cert: Path, ca_key: Path, out: Path, days: int
) -> None:
    """Add CERTIFICATES to the CA's revocation list and sign it again; none: only renew it.

    Copy the list to every node and send each SIGHUP: their connections under a revoked
    certificate close at once, and new handshakes with it are refused.
    """
    done = revoke(ca_cert, ca_key, out, list(certificates), days)  # TLSConfigError: exit 2
    for serial in done.added:
        click.echo(f"revoked serial {serial:x}")
    click.echo(
        f"{out}: {done.total} certificate(s) revoked, valid until "
        f"{done.next_update:%Y-%m-%d %H:%M} UTC; copy it to every node and send each SIGHUP"
    )


__all__ = ["tls"]
