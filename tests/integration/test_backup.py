"""Real processes: ``snapshot save`` under load, ``snapshot restore`` into a new cluster.

The state is made larger than one backup chunk (``limits.BACKUP_CHUNK_BYTES``) so
the download takes several bounded answers. Every write acknowledged at an index
at or below the backup's must read back from the restored cluster; the restored
cluster has a new cluster id, passes ``verify``, and takes new writes.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from resonetics import errors, limits
from resonetics.cli import main
from resonetics.client import Client
from resonetics.localcluster import LocalCluster
from tests.integration.conftest import _assert_no_crash

#: Bytes of each large value written before the backup (the state exceeds one chunk).
BIG_VALUE_CHARS = 60_000


class Writer(threading.Thread):
    """Writes w<i> = i in a loop; remembers each acknowledged write's log index."""

    def __init__(self, addresses: list[str]) -> None:
        super().__init__(daemon=True)
        self.addresses = addresses
        self.acked: dict[str, tuple[int, int]] = {}  # key -> (value, index)
        self.stop = threading.Event()

    def run(self) -> None:
        with Client(self.addresses, timeout=15) as client:
            i = 0
            while not self.stop.is_set():
                key = f"w{i}"
                try:
                    receipt = client.put(key, i)
                    self.acked[key] = (i, receipt.index)
                except errors.ResoneticsError:
                    pass  # not acknowledged: not checked
                i += 1
                time.sleep(0.005)


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _meta(cluster: LocalCluster, node: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((cluster.data_dir / node / "meta.json").read_text())
    return doc


def test_save_under_load_restore_into_a_new_cluster_verify_and_read_back(
    tmp_path: Path,
) -> None:
    old = LocalCluster(tmp_path / "old", size=3, tick_ms=20)
    backup = tmp_path / "backups" / "cluster.backup"
    backup.parent.mkdir()
    old.start()
    try:
        old.wait_for_leader(timeout_s=60)
        with Client(old.addresses, timeout=30) as client:
            big = "x" * BIG_VALUE_CHARS
            for i in range(2 * limits.BACKUP_CHUNK_BYTES // BIG_VALUE_CHARS + 2):
                client.put(f"big{i}", big)
        writer = Writer(old.addresses)
        writer.start()
        while len(writer.acked) < 20:
            time.sleep(0.05)
        saved = _cli(
            *("snapshot", "save", str(backup)),
            *("--cluster", ",".join(old.addresses), "--timeout", "60"),
            *("--token-file", str(old.admin_token_path)),
        )
        assert saved.exit_code == 0, saved.output
        acked_before = len(writer.acked)
        while len(writer.acked) < acked_before + 20:  # writes go on after the save
            time.sleep(0.05)
        writer.stop.set()
        writer.join(timeout=30)
    finally:
        old.stop()
    _assert_no_crash(old)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # it holds every key
    inspected = _cli("snapshot", "inspect", str(backup), "--json")
    assert inspected.exit_code == 0, inspected.output
    header = json.loads(inspected.output)
    index = header["last_index"]
    assert header["cluster_id"] == _meta(old, "n1")["cluster_id"]
    assert header["body_bytes"] > limits.BACKUP_CHUNK_BYTES  # fetched in several chunks
    expected = {k: v for k, (v, at) in writer.acked.items() if at <= index}
    assert len(expected) >= 20, "the writer had nothing acknowledged before the backup"
    assert any(at > index for _, at in writer.acked.values()), "no write after the save"

    new = LocalCluster(tmp_path / "new", size=3, tick_ms=20)
    new.cluster_id_arg()  # the new cluster's key, as `resonetics init` would make it
    restored = _cli(
        *("snapshot", "restore", str(backup), "--data-dir", str(new.data_dir)),
        *("--peers", ",".join(f"{n}={a}" for n, a in new.peer_addresses.items())),
        *("--clients", new.clients_arg, "--cluster-key", str(new.cluster_key_path)),
    )
    assert restored.exit_code == 0, restored.output
    new.start()
    try:
        new.wait_for_leader(timeout_s=60)
        with Client(new.addresses, timeout=30) as client:
            for key, value in expected.items():
                assert client.get(key) == value, key
            assert client.get("big0") == "x" * BIG_VALUE_CHARS
            receipt = client.put("after-restore", 1)
            assert receipt.index > index  # the chain goes on from the backup's index
    finally:
        new.stop()
    _assert_no_crash(new)
    assert _meta(new, "n1")["cluster_id"] == new.cluster_id != header["cluster_id"]
    verified = _cli("verify", str(new.data_dir))
    assert verified.exit_code == 0, verified.output


def test_backup_ops_are_admin_only(cluster3: LocalCluster, tmp_path: Path) -> None:
    """A backup holds every key: a client without the admin role gets FORBIDDEN for both
    backup ops (a guessed backup id included), and ``snapshot save`` writes no file."""
    with Client(cluster3.addresses, timeout=10) as anonymous:
        anonymous.put("secret", "s3cr3t")
        for op, args in (("backup_begin", {}), ("backup_chunk", {"backup": "0" * 32, "offset": 0})):
            with pytest.raises(errors.Forbidden):
                anonymous.call(op, args)
        chain = anonymous.call("chain_hash", {"index": 1}, any_node=True)
        assert chain["hash"] is not None  # monitor: a hash, no data
    target = tmp_path / "stolen.backup"
    refused = _cli("snapshot", "save", str(target), "--cluster", ",".join(cluster3.addresses))
    assert refused.exit_code == 4 and "FORBIDDEN" in refused.output, refused.output
    assert not target.exists() and not list(tmp_path.glob(".stolen*"))
    with (
        cluster3.admin_client(timeout=10) as admin,
        pytest.raises(errors.BadRequest, match="no backup"),
    ):
        admin.call("backup_chunk", {"backup": "0" * 32, "offset": 0})
