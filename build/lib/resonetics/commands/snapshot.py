"""``resonetics snapshot save|inspect|restore``: back a cluster up, and seed a new one from it.

``save`` asks the leader for its applied state at a committed index
(``backup_begin``, admin), fetches it in bounded chunks (``backup_chunk``),
checks it (``storage/backup_file.py``), asks a majority of the voters whether
they hold the same chain hash at that index (``chain_hash``), and only then
writes the file atomically, mode 0600. ``inspect`` prints a file's header after
checking it whole. ``restore`` seeds new node folders (``server/restore.py``)
under a new cluster id, so the restored cluster never peers with the old one.
"""

from __future__ import annotations

import base64
import binascii
import time
from pathlib import Path
from typing import Any

import click
import msgspec

from resonetics.client import Client
from resonetics.commands.common import (
    client_errors,
    cluster_option,
    dumps,
    timeout_option,
    tls_options,
    token_options,
)
from resonetics.errors import BackupError, ResoneticsError
from resonetics.raft.quorum import majority
from resonetics.security.cluster_key import load_cluster_key
from resonetics.security.tls import TLSConfig
from resonetics.server.config import parse_peers
from resonetics.server.restore import new_membership, seed_node
from resonetics.storage.backup_file import (
    Backup,
    BackupHeader,
    check_body,
    decode_body,
    read_backup,
    write_atomically,
)
from resonetics.storage.identity import check_cluster_id, new_cluster_id

#: Seconds a voter is given to answer ``chain_hash`` during ``save``.
CHAIN_CHECK_TIMEOUT_S = 5.0
#: Rounds of asking the voters for the chain hash before ``save`` gives up.
CHAIN_CHECK_ROUNDS = 5
#: Pause between two rounds (a follower may not have appended the entry yet), seconds.
CHAIN_CHECK_PAUSE_S = 0.5


@click.group()
def snapshot() -> None:
    """Back up a cluster's state to a file, inspect one, restore one into a new cluster."""


# --- save -----------------------------------------------------------------------------------
@snapshot.command("save")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@cluster_option
@timeout_option
@tls_options
@token_options
@client_errors
def save(
    file: Path, cluster: str, timeout: float, tls: TLSConfig | None, token: str | None
) -> None:
    """Save the leader's applied state at a committed index to FILE, checked against the
    chain (admin). FILE holds every key: it is written with mode 0600."""
    with Client(cluster, timeout=timeout, tls=tls, token=token) as client:
        begun: dict[str, Any] = client.call("backup_begin", {})
        try:
            header = msgspec.convert(begun["header"], type=BackupHeader).sealed()
        except (msgspec.ValidationError, KeyError, TypeError) as exc:
            raise BackupError(
                str(file), f"the leader's answer is not a backup header: {exc}"
            ) from None
        body = _fetch(str(begun["address"]), str(begun["backup"]), header, timeout, tls, token)
        check_body(str(file), header, body)
        backup = Backup(header, decode_body(str(file), header, body))
        confirmed = _confirm_chain(client, backup, timeout, tls, token)
    write_atomically(file, [header.to_line(), body])
    read_backup(file)  # what is on disk is what was checked
    click.echo(
        f"saved {file}: cluster {header.cluster_id}, index {header.last_index}, "
        f"term {header.last_term}, {header.body_bytes} bytes of state from {header.node}"
    )
    click.echo(f"  chain hash {header.chain_hash} (confirmed by {', '.join(confirmed)})")


def _fetch(
    address: str,
    backup_id: str,
    header: BackupHeader,
    timeout: float,
    tls: TLSConfig | None,
    token: str | None,
) -> bytes:
    """The body, chunk by chunk, from the node that encoded it."""
    parts: list[bytes] = []
    offset = 0
    with Client(address, timeout=timeout, tls=tls, token=token) as holder:
        while True:
            answer = holder.call("backup_chunk", {"backup": backup_id, "offset": offset})
            try:
                data = base64.b64decode(answer["data"], validate=True)
            except (binascii.Error, KeyError, TypeError) as exc:
                raise BackupError(
                    address, f"chunk at offset {offset} is unreadable: {exc}"
                ) from None
            parts.append(data)
            offset += len(data)
            if answer.get("eof") or offset > header.body_bytes:
                break
            if not data:
                raise BackupError(address, f"empty chunk at offset {offset} before the end")
    return b"".join(parts)


def _confirm_chain(
    client: Client, backup: Backup, timeout: float, tls: TLSConfig | None, token: str | None
) -> list[str]:
    """Voters (a majority at least) that hold the backup's chain hash at its index.

    Any voter holding a *different* hash there fails the save at once: the backup would
    not be the cluster's history. A voter whose log no longer (or not yet) holds the
    index counts neither way.
    """
    header = backup.header
    view = client.member_list()
    voters = [str(v) for v in view.get("voters", [])]
    addresses = {str(n): str(a) for n, a in view.get("addresses", {}).items()}
    need = majority(len(voters))
    confirmed: set[str] = set()
    for _ in range(CHAIN_CHECK_ROUNDS):
        for node in voters:
            if node in confirmed or node not in addresses:
                continue
            held = _hash_on(addresses[node], header.last_index, min(timeout, 5.0), tls, token)
            if held is None:
                continue
            if held != header.chain_hash:
                raise BackupError(
                    "backup",
                    f"{node} holds chain hash {held} at index {header.last_index}, the leader's "
                    f"state says {header.chain_hash}: not saved",
                )
            confirmed.add(node)
        if len(confirmed) >= need:
            return sorted(confirmed)
        time.sleep(CHAIN_CHECK_PAUSE_S)
    raise BackupError(
        "backup",
        f"only {len(confirmed)} of {len(voters)} voters confirmed chain hash "
        f"{header.chain_hash} at index {header.last_index} (a majority, {need}, must): not saved",
    )


def _hash_on(
    address: str, index: int, timeout: float, tls: TLSConfig | None, token: str | None
) -> str | None:
    try:
        with Client(address, timeout=timeout, tls=tls, token=token) as one:
            answer = one.call("chain_hash", {"index": index}, any_node=True)
    except (OSError, ResoneticsError):
        return None  # down or unreachable: counts neither way
    held = answer.get("hash") if isinstance(answer, dict) else None
    return str(held) if held is not None else None


# --- inspect --------------------------------------------------------------------------------
@snapshot.command("inspect")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the header as JSON.")
@client_errors
def inspect(file: Path, as_json: bool) -> None:
    """Check FILE whole and print its header (cluster, index, term, chain hash, sizes)."""
    backup = read_backup(file)
    fields = msgspec.structs.asdict(backup.header)
    fields["voters"] = list(backup.snapshot.meta.membership.voters)
    if as_json:
        click.echo(dumps(fields))
        return
    for name, value in fields.items():
        click.echo(f"{name:<14} {value}")
    click.echo("checks         OK (header, length, checksums, position of the state)")


# --- restore --------------------------------------------------------------------------------
@snapshot.command("restore")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Data dir of the new cluster; each node's folder <DIR>/<ID> must not exist yet.",
)
@click.option(
    "--peers", required=True, help="The NEW cluster's nodes: ID=PEER_HOST:PORT,... (all voters)."
)
@click.option("--clients", default="", help="ID=CLIENT_HOST:PORT,... (for leader hints).")
@click.option(
    "--id",
    "ids",
    multiple=True,
    help="Seed only this node's folder (repeatable; default: every node in --peers).",
)
@click.option(
    "--cluster-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The new cluster's key file (resonetics init): its id becomes the cluster's.",
)
@click.option("--cluster-id", "cluster_id", help="The new cluster's id (32 hex digits).")
@click.option(
    "--keep-cluster-id",
    is_flag=True,
    help="Reuse the backed-up cluster's id (only when the old cluster is gone for good).",
)
@client_errors
def restore(
    file: Path,
    data_dir: Path,
    peers: str,
    clients: str,
    ids: tuple[str, ...],
    cluster_key: Path | None,
    cluster_id: str | None,
    keep_cluster_id: bool,
) -> None:
    """Seed a NEW cluster's node folders from the backup FILE (a new cluster id by default)."""
    backup = read_backup(file)
    peer_map = parse_peers(peers)
    if not peer_map:
        raise click.BadParameter("name at least one node", param_hint="--peers")
    client_map = parse_peers(clients, flag="--clients") if clients else {}
    targets = list(ids) or list(peer_map)
    unknown = [n for n in targets if n not in peer_map]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not in --peers", param_hint="--id")
    new_id = _new_cluster_id(backup, cluster_key, cluster_id, keep_cluster_id, bool(ids))
    membership = new_membership(peer_map, client_map)
    for node in targets:
        folder = seed_node(backup, data_dir, node, new_id, membership)
        click.echo(f"{node}: seeded {folder} at index {backup.header.last_index}")
    click.echo(
        f"cluster {new_id} (restored from cluster {backup.header.cluster_id} at index "
        f"{backup.header.last_index}); start each node with: resonetics serve --id ID "
        f"--peers {peers} --data-dir {data_dir} "
        + (f"--cluster-key {cluster_key}" if cluster_key else f"--cluster-id {new_id}")
    )


def _new_cluster_id(
    backup: Backup,
    key: Path | None,
    given: str | None,
    keep: bool,
    some_nodes: bool,
) -> str:
    """The restored cluster's id: new unless ``--keep-cluster-id`` (see server/restore.py)."""
    if sum((key is not None, given is not None, keep)) > 1:
        raise click.UsageError("give one of --cluster-key, --cluster-id, --keep-cluster-id")
    old = backup.header.cluster_id
    if keep:
        return old
    if key is not None:
        chosen, source = load_cluster_key(key).cluster_id, f"--cluster-key {key}"
    elif given is not None:
        chosen, source = check_cluster_id(given), "--cluster-id"
    elif some_nodes:
        raise click.UsageError(
            "--id seeds only some nodes: every node of the new cluster needs the same new "
            "cluster id; give --cluster-key FILE (made once with `resonetics init`) or "
            "--cluster-id"
        )
    else:
        return new_cluster_id()
    if chosen == old:
        raise click.BadParameter(
            f"{chosen} is the backed-up cluster's id: a restored cluster must not be able to "
            "peer with the old one; make a new key with `resonetics init` (or pass "
            "--keep-cluster-id if the old cluster is gone for good)",
            param_hint=source,
        )
    return chosen


__all__ = ["snapshot"]
