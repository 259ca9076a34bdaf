"""A node folder written by an older release, started by this one (real processes).

Since 2026-12-07 evening ``snapshot.json`` is a JSON line then the replicated state as it is
(format 2), and the replicated state a JSON line then the machine's bytes (format 3); before,
each held the next layer in base64 (file format 1, state format 2). An upgraded node must
restore such a folder and serve every key it held, then write its next snapshot in the new
formats (docs/storage.md, docs/operations.md "Upgrades").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.storage.snapshot_file import decode_snapshot
from tests.integration.conftest import running_cluster
from tests.older_formats import older_file, older_state


def _one_node(data_dir: Path) -> Iterator[LocalCluster]:
    """One node taking a snapshot every five entries."""
    return running_cluster(data_dir, 1, ["--snapshot-entries", "5"])


def _as_older_release_wrote_it(data: bytes, path: str) -> bytes:
    """``snapshot.json`` bytes in file format 1 around a format-2 replicated state."""
    snapshot = decode_snapshot(data, path)
    return older_file(dataclasses.replace(snapshot, data=older_state(snapshot.data)))


def test_a_folder_whose_snapshot_an_older_release_wrote_is_restored_and_served(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    for cluster in _one_node(data_dir):
        with Client(cluster.addresses, timeout=10) as client:
            for i in range(23):
                client.put(f"k{i}", {"n": i, "s": "x" * i})
    snap = data_dir / "n1" / "snapshot.json"
    written = snap.read_bytes()
    assert written.startswith(b'{"format":2,')
    older = _as_older_release_wrote_it(written, str(snap))
    assert b"\n" not in older.rstrip(b"\n")  # one JSON object, as format 1 was
    snap.write_bytes(older)
    for cluster in _one_node(data_dir):
        with Client(cluster.addresses, timeout=10) as client:
            assert [client.get(f"k{i}") for i in range(23)] == [
                {"n": i, "s": "x" * i} for i in range(23)
            ]
            for i in range(23, 35):  # past the next snapshot
                client.put(f"k{i}", i)
            assert client.get("k34") == 34
    rewritten = snap.read_bytes()
    assert rewritten.startswith(b'{"format":2,')
    state = decode_snapshot(rewritten, str(snap)).data
    assert state.startswith(b'{"format":3,')
