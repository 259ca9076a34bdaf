"""A node folder written by an older release, started by this one (real processes).

Since 2026-12-07 evening ``snapshot.json`` is a JSON line then the replicated state as it is
(format 2), and the replicated state a JSON line then the machine's bytes (format 3); before,
each held the next layer in base64 (file format 1, state format 2). An upgraded node must
restore such a folder and serve every key it held, then write its next snapshot in the new
formats (docs/storage.md, docs/operations.md "Upgrades").
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.security.cluster_key import load_cluster_key
from resonetics.storage.snapshot_file import decode_snapshot
from tests.integration.conftest import one_line, running_cluster, serve_once
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


def _snapshotted_and_stopped(data_dir: Path, keys: int) -> Path:
    """A node that took snapshots while it wrote ``keys`` keys and stopped cleanly; the
    path of its ``snapshot.json``."""
    for cluster in _one_node(data_dir):
        with Client(cluster.addresses, timeout=10) as client:
            for i in range(keys):
                client.put(f"k{i}", i)
    snap = data_dir / "n1" / "snapshot.json"
    assert snap.exists()
    return snap


def _refused_start(data_dir: Path) -> str:
    mine = load_cluster_key(data_dir / "cluster.key").cluster_id
    result = serve_once(data_dir, "n1", "--cluster-id", mine)
    assert result.returncode == 2, result.stderr
    return one_line(result)


def test_a_changed_deep_or_huge_snapshot_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    """What a disk, a stray tool or someone with the folder can leave in ``snapshot.json``:
    the start is refused in one line naming the file, never a traceback, and the file is
    left as it was found. Deep and huge headers carry a checksum that holds."""
    data_dir = tmp_path / "data"
    snap = _snapshotted_and_stopped(data_dir, 12)
    good = snap.read_bytes()
    line_end = good.index(b"\n")
    flipped = bytearray(good)
    flipped[line_end + 10] ^= 0x01  # inside the state
    body = good[: good.rindex(b',"checksum":"', 0, line_end)] + b"}"
    deep = body.replace(b'"membership":{', b'"membership":{"voters":' + b"[" * 300_000, 1)
    deep = deep.replace(b"}", b"]" * 300_000 + b"}", 1)
    huge = body[:-1] + b',"x":"' + b"x" * 10_000_000 + b'"}'  # a field it does not know
    state = good[line_end + 1 :]
    for forged, reason in (
        (bytes(flipped), "snapshot checksum mismatch"),
        (_sealed(deep, state), "unreadable snapshot header"),
        (_sealed(huge, state), "unknown field"),
    ):
        snap.write_bytes(forged)
        line = _refused_start(data_dir)
        assert "snapshot.json" in line and reason in line, line
        assert snap.read_bytes() == forged
    snap.write_bytes(good)
    for cluster in _one_node(data_dir):
        with Client(cluster.addresses, timeout=10) as client:
            assert client.get("k11") == 11


def _sealed(body: bytes, state: bytes) -> bytes:
    digest = hashlib.sha256(body + b"\n" + state).hexdigest().encode("ascii")
    return body[:-1] + b',"checksum":"' + digest + b'"}\n' + state


def test_a_snapshot_file_copied_from_another_cluster_stops_the_start_naming_it(
    tmp_path: Path,
) -> None:
    """An operator's mistake at 3 a.m.: ``snapshot.json`` copied from a node of another
    cluster into this node's folder. Its checksum holds and this log does not hold its
    entry, so without the cluster in the file the start took it for an install a crash cut
    short, dropped this node's log and served the other cluster's keys."""
    ours = tmp_path / "ours"
    theirs = tmp_path / "theirs"
    _snapshotted_and_stopped(ours, 12)
    copied = _snapshotted_and_stopped(theirs, 40).read_bytes()
    snap = ours / "n1" / "snapshot.json"
    snap.write_bytes(copied)
    before = _node_files(ours / "n1")
    line = _refused_start(ours)
    theirs_id = load_cluster_key(theirs / "cluster.key").cluster_id
    ours_id = load_cluster_key(ours / "cluster.key").cluster_id
    assert "snapshot.json" in line and f"snapshot of cluster {theirs_id}" in line, line
    assert f"meta.json names cluster {ours_id}" in line, line
    assert _node_files(ours / "n1") == before


def _node_files(folder: Path) -> dict[str, bytes]:
    """The node's files (its log, meta.json, snapshot.json) as they are."""
    return {
        name: (folder / name).read_bytes() for name in ("log.jsonl", "meta.json", "snapshot.json")
    }
