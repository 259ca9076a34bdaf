"""A node folder written by an older release, started by this one (real processes).

Since 2026-12-07 evening ``snapshot.json`` is a JSON line then the replicated state as it is
(format 2), and the replicated state a JSON line then the machine's bytes (format 3); before,
each held the next layer in base64 (file format 1, state format 2). An upgraded node must
restore such a folder and serve every key it held, then write its next snapshot in the new
formats (docs/storage.md, docs/operations.md "Upgrades").
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from resonetics.storage.snapshot_file import decode_snapshot
from tests.integration.conftest import _assert_no_crash

_SORTED = msgspec.json.Encoder(order="sorted")


@contextmanager
def _one_node(data_dir: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(data_dir, size=1, tick_ms=20, extra_args=["--snapshot-entries", "5"])
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=60)
        yield cluster
    finally:
        cluster.stop()
        _assert_no_crash(cluster)


def _as_older_release_wrote_it(data: bytes, path: str) -> bytes:
    """``snapshot.json`` bytes in file format 1 around a format-2 replicated state."""
    snapshot = decode_snapshot(data, path)
    head, machine = snapshot.data.split(b"\n", 1)
    state = msgspec.json.decode(head)
    assert state.pop("machine_bytes") == len(machine)
    state["format"] = 2
    state["machine"] = base64.b64encode(machine).decode("ascii")
    meta = snapshot.meta
    doc = {
        "format": 1,
        "last_included_index": meta.last_included_index,
        "last_included_term": meta.last_included_term,
        "last_included_hash": meta.last_included_hash,
        "membership": msgspec.to_builtins(meta.membership),
        "state": base64.b64encode(_SORTED.encode(state)).decode("ascii"),
        **({"signer": meta.signer, "sig": meta.sig} if meta.sig else {}),
    }
    body = msgspec.json.encode(doc)
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return body[:-1] + b',"checksum":"' + digest + b'"}\n'


def test_a_folder_whose_snapshot_an_older_release_wrote_is_restored_and_served(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with _one_node(data_dir) as cluster, Client(cluster.addresses, timeout=10) as client:
        for i in range(23):
            client.put(f"k{i}", {"n": i, "s": "x" * i})
    snap = data_dir / "n1" / "snapshot.json"
    written = snap.read_bytes()
    assert written.startswith(b'{"format":2,')
    older = _as_older_release_wrote_it(written, str(snap))
    assert b"\n" not in older.rstrip(b"\n")  # one JSON object, as format 1 was
    snap.write_bytes(older)
    with _one_node(data_dir) as cluster, Client(cluster.addresses, timeout=10) as client:
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
