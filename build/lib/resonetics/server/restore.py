"""Seed a NEW cluster's node folders from a backup (``resonetics snapshot restore``).

Theory of operation
-------------------
A restored node starts as if it had installed a snapshot: its folder holds a
``meta.json`` (format 2: the node id, the *new* cluster's id, the backup's term,
commit and applied at the backup's index), a ``snapshot.json`` with the backed-up
state, and a ``log.jsonl`` that is only the SNAP_DUMMY anchor at that index
carrying the chain hash there, so the hash chain goes on from the backed-up
history and ``verify`` checks the new entries against it. The snapshot's
configuration is replaced by the new cluster's voters and addresses (``--peers``,
``--clients``); the rest of the state (keys, client sessions, position) is the
backup's, byte for byte. The folder is written through ``FileNodeStorage`` (fresh
folder, then ``save_hard_state``, then ``save_snapshot``), the same writes and the
same crash story as a node installing a snapshot.

Why a new cluster id by default: the cluster id is checked in every peer
handshake and names the data dirs that belong together (DESIGN §7). Restored
under the old id, a restored node could complete handshakes with a surviving
node of the old cluster (same key file) and the two histories, identical up to
the backup's index and different after it, would meet: the old cluster's nodes
would see a log that forks from theirs, and a stale node could vote in the new
cluster. A new id (from the new cluster's key file, made with ``resonetics
init``) makes the two clusters strangers. ``keep_cluster_id`` is for when the
old cluster is gone for good and clients or key files name its id.

A signed snapshot's signature covers the old configuration, so it is dropped:
the restored snapshot is unsigned (as one taken before signing was switched on).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from resonetics.errors import BackupError
from resonetics.raft.membership import Membership
from resonetics.raft.ready import HardState, Snapshot, SnapshotMeta
from resonetics.server.machine_record import check_machine_record
from resonetics.storage.backup_file import Backup
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.node_storage import FileNodeStorage


def new_membership(peers: Mapping[str, str], clients: Mapping[str, str]) -> Membership:
    """The restored cluster's configuration: every node of ``peers`` a voter."""
    return Membership(
        voters=tuple(peers),
        addresses=dict(peers),
        client_addresses={n: a for n, a in clients.items() if n in peers},
    )


def seed_node(
    backup: Backup,
    data_dir: Path,
    node_id: str,
    cluster_id: str,
    membership: Membership,
) -> Path:
    """Write ``<data_dir>/<node_id>`` from ``backup``; refuses a folder that holds anything."""
    node_dir = data_dir / node_id
    if node_dir.exists() and (not node_dir.is_dir() or any(node_dir.iterdir())):
        raise BackupError(
            str(node_dir),
            "already exists and is not empty: restore seeds a new cluster into empty "
            "data dirs (move the old folder away first)",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    node_dir.mkdir(mode=0o700, exist_ok=True)
    check_machine_record(node_dir, backup.header.machine)
    meta = backup.snapshot.meta
    index, term = meta.last_included_index, meta.last_included_term
    restored = Snapshot(
        SnapshotMeta(index, term, meta.last_included_hash, membership), backup.snapshot.data
    )
    storage = FileNodeStorage(OsFileSystem(), str(node_dir), NodeIdentity(node_id, cluster_id))
    try:
        storage.load()  # a fresh folder: GENESIS of the new cluster, then meta.json
        storage.save_hard_state(HardState(term=term, vote=None, commit=index), index)
        storage.save_snapshot(restored, index)
    finally:
        storage.close()
    return node_dir


__all__ = ["new_membership", "seed_node"]
