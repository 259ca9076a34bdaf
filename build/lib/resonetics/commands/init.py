"""``resonetics init``: make a new cluster's key file (its id and the peers' shared secret)."""

from __future__ import annotations

from pathlib import Path

import click

from resonetics.security.cluster_key import new_cluster_key, write_cluster_key


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("cluster.key"),
    show_default=True,
    help="Where to write the key file (never overwritten).",
)
def init(out: Path) -> None:
    """Make a cluster key: a random cluster id and the secret every node proves it holds.

    Copy the file to every node (mode 0600) and start each with --cluster-key FILE
    (or cluster_key in the TOML file). A node refuses peers that cannot prove the
    key, and data dirs and peers of any other cluster.
    """
    key = new_cluster_key()
    write_cluster_key(out, key)
    click.echo(f"cluster {key.cluster_id}: key written to {out} (mode 0600)")
    click.echo(f"start every node with: resonetics serve ... --cluster-key {out}")
