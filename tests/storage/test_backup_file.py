"""Backup files (storage/backup_file.py) and ``snapshot inspect|restore`` on them, offline.

Every way a backup can be wrong (foreign, empty, truncated, edited header, flipped
byte in the state, state at another position) is refused with a message naming
what was wrong, and the CLI turns it into one line and exit status 2, never a
traceback. ``restore`` refuses arguments that would make a cluster peer with the
old one or overwrite a node's data.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from resonetics.cli import main
from resonetics.errors import BackupError
from resonetics.machine.replicated import ReplicatedKV
from resonetics.raft.membership import Membership
from resonetics.raft.ready import Snapshot, SnapshotMeta
from resonetics.security.cluster_key import ClusterKey, write_cluster_key
from resonetics.storage.backup_file import (
    BACKUP_FORMAT,
    BACKUP_VERSION,
    BackupHeader,
    read_backup,
    write_atomically,
)
from resonetics.storage.fs import OsFileSystem
from resonetics.storage.identity import NodeIdentity
from resonetics.storage.node_storage import FileNodeStorage
from resonetics.storage.snapshot_file import encode_snapshot

OLD_CLUSTER = "0" * 31 + "1"
NEW_CLUSTER = "0" * 31 + "2"
INDEX, TERM, HASH = 42, 3, "ab" * 32
PEERS = "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103"


def _state(index: int = INDEX, term: int = TERM, hash_: str = HASH) -> bytes:
    machine = ReplicatedKV()
    machine.last_applied, machine.last_applied_term, machine.last_applied_hash = (
        index,
        term,
        hash_,
    )
    return machine.snapshot()


def _parts(state: bytes | None = None) -> tuple[bytes, bytes]:
    meta = SnapshotMeta(INDEX, TERM, HASH, Membership(voters=("a", "b", "c")))
    body = encode_snapshot(Snapshot(meta, state if state is not None else _state()))
    header = BackupHeader(
        format=BACKUP_FORMAT,
        version=BACKUP_VERSION,
        cluster_id=OLD_CLUSTER,
        node="a",
        machine="kv",
        last_index=INDEX,
        last_term=TERM,
        chain_hash=HASH,
        created_ms=1,
        body_bytes=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    return header.to_line(), body


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    path = tmp_path / "good.backup"
    write_atomically(path, _parts())
    return path


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_backup_file_is_written_owner_only_and_reads_back(backup: Path) -> None:
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    read = read_backup(backup)
    assert read.header.last_index == INDEX and read.snapshot.meta.last_included_hash == HASH
    assert not [p for p in backup.parent.iterdir() if p.name.endswith(".tmp")]


def _corrupt(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty", lambda h, b: b"", "empty file"),
        ("foreign", lambda h, b: b"hello world\nnot a backup\n", "not JSON"),
        ("json", lambda h, b: b'{"kv": 1}\n', "not a backup header"),
        ("no-newline", lambda h, b: h[:-1], "no complete header line"),
        ("truncated", lambda h, b: h + b[: len(b) // 2], "truncated"),
        (
            "header-edited",
            lambda h, b: h.replace(b'"last_index":42', b'"last_index":43') + b,
            "header checksum mismatch",
        ),
        ("body-flipped", lambda h, b: h + _flip(b, len(b) // 2), "state checksum mismatch"),
        ("trailing", lambda h, b: h + b + b"junk", "unexpected bytes after the state"),
        ("version", lambda h, b: h.replace(b'"version":1', b'"version":9') + b, "version 9"),
    ],
)
def test_corrupt_truncated_or_foreign_backup_is_refused_naming_what_is_wrong(
    tmp_path: Path, name: str, make: object, reason: str
) -> None:
    header, body = _parts()
    assert callable(make)
    path = _corrupt(tmp_path, name, make(header, body))
    with pytest.raises(BackupError, match=reason):
        read_backup(path)
    for args in (
        ("snapshot", "inspect", str(path)),
        ("snapshot", "restore", str(path), "--data-dir", str(tmp_path / "d"), "--peers", PEERS),
    ):
        result = _cli(*args)
        assert result.exit_code == 2, result.output
        assert reason in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()  # nothing seeded from a bad file


def test_backup_whose_state_records_another_position_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "moved.backup"
    write_atomically(path, _parts(_state(index=INDEX - 1)))
    with pytest.raises(BackupError, match="replicated state records position"):
        read_backup(path)


def test_inspect_prints_the_header(backup: Path) -> None:
    result = _cli("snapshot", "inspect", str(backup), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert (doc["cluster_id"], doc["last_index"], doc["last_term"], doc["chain_hash"]) == (
        OLD_CLUSTER,
        INDEX,
        TERM,
        HASH,
    )
    text = _cli("snapshot", "inspect", str(backup))
    assert "checks         OK" in text.output and f"last_index     {INDEX}" in text.output


def test_restore_seeds_a_new_cluster_at_the_backups_index(backup: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _cli("snapshot", "restore", str(backup), "--data-dir", str(data), "--peers", PEERS)
    assert result.exit_code == 0, result.output
    ids = set()
    for node in ("n1", "n2", "n3"):
        storage = FileNodeStorage(OsFileSystem(), str(data / node), NodeIdentity(node))
        state = storage.load()
        storage.close()
        assert state.snapshot is not None and state.anchor.index == INDEX
        assert state.anchor.hash == HASH and state.hard_state.term == TERM
        assert state.snapshot.meta.membership.voters == ("n1", "n2", "n3")
        assert (data / node / "machine").read_text().strip() == "kv"
        assert storage.identity is not None
        ids.add(storage.identity.cluster_id)
    assert len(ids) == 1 and OLD_CLUSTER not in ids  # one new identity for all
    verified = _cli("verify", str(data))
    assert verified.exit_code == 0, verified.output


def test_restore_refuses_the_old_cluster_id(backup: Path, tmp_path: Path) -> None:
    """A restored cluster must not be able to peer with the one it was backed up from."""
    key = tmp_path / "old.key"
    write_cluster_key(key, ClusterKey(OLD_CLUSTER, b"k" * 32))
    base = ("snapshot", "restore", str(backup), "--data-dir", str(tmp_path / "d"))
    for extra in (("--cluster-key", str(key)), ("--cluster-id", OLD_CLUSTER)):
        result = _cli(*base, "--peers", PEERS, *extra)
        assert result.exit_code == 2 and "backed-up cluster's id" in result.output
    kept = _cli(*base, "--peers", PEERS, "--keep-cluster-id")
    assert kept.exit_code == 0, kept.output
    assert f"cluster {OLD_CLUSTER}" in kept.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--peers", PEERS, "--id", "n1"), "every node of the new cluster needs the same"),
        (("--peers", PEERS, "--id", "n9", "--cluster-id", NEW_CLUSTER), "n9 not in --peers"),
        (("--peers", "n1"), "is not ID=HOST:PORT"),
        (("--peers", PEERS, "--cluster-id", "xyz"), "32 hex digits"),
        (("--peers", PEERS, "--cluster-id", NEW_CLUSTER, "--keep-cluster-id"), "give one of"),
        ((), "Missing option '--peers'"),
    ],
)
def test_restore_wrong_args_are_refused(
    backup: Path, tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    result = _cli("snapshot", "restore", str(backup), "--data-dir", str(tmp_path / "d"), *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_restore_never_overwrites_a_node_folder(backup: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "n2").mkdir(parents=True)
    (data / "n2" / "meta.json").write_text("{}")
    result = _cli(
        "snapshot",
        "restore",
        str(backup),
        "--data-dir",
        str(data),
        "--peers",
        PEERS,
        "--id",
        "n2",
        "--cluster-id",
        NEW_CLUSTER,
    )
    assert result.exit_code == 2 and "already exists and is not empty" in result.output
    assert (data / "n2" / "meta.json").read_text() == "{}"


def test_inspect_and_restore_of_a_missing_file_or_a_directory(tmp_path: Path) -> None:
    for path, reason in ((tmp_path / "nope", "no such file"), (tmp_path, "")):
        result = _cli("snapshot", "inspect", str(path))
        assert result.exit_code == 2 and reason in result.output, result.output
